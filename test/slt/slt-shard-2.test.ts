/** The sqllogictest corpus, second half (the split and the checks are in harness.ts). */
import { sltShard } from './harness.ts';

sltShard(2, 2);
