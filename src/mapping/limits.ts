/**
 * Every bound the mapping enforces, in one place. Load-time bounds refuse a configuration;
 * runtime bounds end one login with a named outcome (budget.ts), never the process.
 *
 * The runtime defaults are sized for real directories: a user in 1,000 groups of 128 characters
 * (about 131 KB of JSON) passes mapping and `require` rules with room to spare (claimList 2,048,
 * claimsBytes 256 KiB). Entra ID puts at most 200 groups in a token (then an overage claim), Okta
 * 100 by default; Keycloak and LDAP-backed IdPs have no cap, hence the margin.
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

  /**
   * Regexes (RE2, linear time: regex.ts): characters of a pattern, instructions of its compiled
   * program (one match costs at most program x input steps), characters of a value a rule's regex is
   * run on (longer values do not match).
   */
  regexPattern: 256,
  regexProgram: 1500,
  regexInput: 1024,

  /** CEL, at load: characters of source, nodes and depth of the parsed (macro-expanded) tree, estimated cost. */
  celSource: 2048,
  celNesting: 24,
  celNodes: 400,
  celDepth: 48,
  /**
   * Estimated cost of one expression (units: about one function call, or 100 characters a string
   * function reads, or 100 steps of a regex). Every comprehension over data counts celList iterations,
   * every string of the claims celStringEstimate characters.
   */
  celCost: 250_000,
  /** Sum of the estimated costs of every expression of one mapping. */
  celCostPerMapping: 1_000_000,
  /** The length the load-time estimate assumes for a string from the claims (the runtime meter counts the real one). */
  celStringEstimate: 256,

  /** CEL, at runtime: the largest list/map and string an expression may see or build. */
  celList: 2048,
  celString: 8192,
  /** Nesting depth and number of values of the upstream claims an expression is given. */
  celClaimsDepth: 16,
  celClaimsValues: 65_536,
  /** Cost units one evaluation of one expression may spend, counted as it runs (outcome cel_cost_exceeded). */
  celRuntimeCost: 500_000,

  /**
   * The upstream claims of one login, checked before anything maps or stores them (claims-bounds.ts):
   * nesting depth (claims_too_deep), entries of one array or object (claim_list_too_long), characters of
   * one string and approximate JSON size of the whole (claims_too_large).
   */
  claimsDepth: 16,
  claimList: 2048,
  claimString: 8192,
  claimsBytes: 256 * 1024,

  /** CPU-time budget (main thread) of one login's whole mapping, in milliseconds (outcome mapping_timeout). */
  mappingTimeMs: 500,
} as const;

export type MappingLimits = typeof LIMITS;
