/** The pipe language: `SOURCE | STAGE | … | SINK`, compiled into pipeline statements. */
export { compilePipe, splitPipe, PipeError } from './pipe.ts';
export type { CompiledPipe } from './pipe.ts';
