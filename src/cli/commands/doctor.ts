import { Command } from 'commander';
import { runAction } from '../context.js';

export function doctorCommand(): Command {
  return new Command('doctor').description('Check the installation: runtime, devices, ffmpeg, espeak-ng, model cache').action(
    runAction(async (ctx) => {
      ctx.print('doctor: not implemented yet');
      return 0;
    }),
  );
}
