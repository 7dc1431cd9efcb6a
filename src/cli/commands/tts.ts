// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function ttsCommand(): Command {
  return new Command('tts').description('Turn text into speech');
}
