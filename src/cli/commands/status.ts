// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function statusCommand(): Command {
  return new Command('status').description('Show the cross-process job slots and who holds them');
}
