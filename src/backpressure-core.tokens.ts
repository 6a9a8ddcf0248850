/**
 * Internal DI tokens of the module's hidden global core (`BackpressureCoreModule`). They are not
 * part of the package's API: applications inject `GaugeRegistry`, `BACKPRESSURE_OPTIONS` and gauge
 * tokens, which `forRoot` and `forFeature` modules provide as aliases of these.
 */

/**
 * The application's one `GaugeRegistry`, visible everywhere whether the root is global or not.
 * Described so that Nest's error for a `forFeature()` without a root says what is missing.
 */
export const GAUGE_REGISTRY_REF = Symbol('GaugeRegistry of BackpressureModule.forRoot()');

/** The application's `BACKPRESSURE_OPTIONS`, as the core holds them. */
export const MODULE_OPTIONS_REF = Symbol('BackpressureModuleOptionsRef');

/** What one `forFeature()` declares (`FeatureGauges`), found by the core at bootstrap. */
export const FEATURE_GAUGES = Symbol('BackpressureFeatureGauges');

/** Which root method built the core (`'forRoot'` or `'forRootAsync'`), for messages. */
export const ROOT_SOURCE = Symbol('BackpressureRootSource');
