import { z } from 'zod';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration in seconds, written as a number of seconds or as `90s`, `5m`, `8h`, `30d`. */
export const Duration = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d+(s|m|h|d)$/, 'a duration like 90s, 5m, 8h or 30d')
    .transform((text) => Number(text.slice(0, -1)) * (UNIT_SECONDS[text.slice(-1)] ?? 1)),
]);
