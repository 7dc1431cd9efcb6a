// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function evalCommand(): Command {
  return new Command('eval').description('Score separations against reference stems');
}
