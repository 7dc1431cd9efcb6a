/** Cross-process job slots and bounded batches. */
export * from './semaphore.js';
export * from './batch.js';
