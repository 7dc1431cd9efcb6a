// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function modelsCommand(): Command {
  return new Command('models').description('List, download, import and verify models');
}
