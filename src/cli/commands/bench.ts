// Placeholder: replaced by the owner of this command.
import { Command } from 'commander';

export function benchCommand(): Command {
  return new Command('bench').description('Benchmark separation and TTS on this machine');
}
