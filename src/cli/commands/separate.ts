// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function separateCommand(): Command {
  return new Command('separate').description('Separate audio into stems');
}
