/** Cross-process job slots, bounded batches and the shared job flags. */
export * from './semaphore.js';
export * from './batch.js';
export * from './options.js';
