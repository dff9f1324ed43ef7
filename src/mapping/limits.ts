/**
 * Every bound the mapping enforces, in one place. Load-time bounds refuse a configuration;
 * runtime bounds only ever make an expression fail (never the process), see cel.ts.
 */
export const LIMITS = {
  /** Rules per participant. */
  rules: 200,
  /** Characters of a claim name (a rule's `claim`, a passthrough entry). */
  claimName: 256,
  /** Characters of a source path, a template, a `message`. */
  path: 512,
  template: 1024,
  message: 1024,
  /** Entries of one lookup table. */
  lookupEntries: 10_000,
  /** Characters of a constant `value` once serialised as JSON. */
  constantJson: 16_384,

  /** Regexes: characters of a pattern, largest `{n,m}`, characters of a value a regex is run on. */
  regexPattern: 256,
  regexRepeat: 1000,
  regexInput: 1024,

  /** CEL, at load: characters of source, nodes and depth of the parsed (macro-expanded) tree, estimated cost. */
  celSource: 2048,
  celNesting: 24,
  celNodes: 400,
  celDepth: 48,
  celCost: 20_000,
  /** Sum of the estimated costs of every expression of one mapping. */
  celCostPerMapping: 80_000,

  /** CEL, at runtime: the largest list/map and string an expression may see or build. */
  celList: 256,
  celString: 8192,
  /** Nesting depth and number of values of the upstream claims an expression is given. */
  celClaimsDepth: 16,
  celClaimsValues: 10_000,
} as const;
