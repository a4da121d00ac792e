/** The sqllogictest corpus, first half (the split and the checks are in harness.ts). */
import { sltShard } from './harness.ts';

sltShard(1, 2);
