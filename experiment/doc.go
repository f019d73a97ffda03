// Package experiment runs the robust-weight-signature study (../shared/METHODS.md §1) end to
// end, as a configuration file describes it, and returns every number it measured.
//
// The study: θ0 is trained on clean data; θ_std is fine-tuned from θ0 on clean data and θ_c on
// data corrupted by each corruption c, with one recipe; a signature RWS_c is extracted per
// corruption (package signature) and written to signatures/c.rws; θ_std, θ_c and θ_std + RWS_c
// are evaluated on the clean test set and on every corrupted one. On top of that it measures
// the paper's observations (per-layer differences, signature cosines across corruptions and
// seeds, signatures across datasets) and the patch properties (scaling with α and exact
// removal, composition of all signatures, transfer to an updated backbone, size against
// accuracy over codecs, bits and layers). Results holds all of it; package report turns it into
// report.md, report.html and results.json.
//
// The default configuration (DefaultTOML, embedded) is the `cnn` architecture on MNIST with
// the 15 MNIST-C corruptions, sized to run in about a quarter of an hour on two cores: every
// fine-tune sees a few thousand images, and each evaluation set holds a fixed, seeded sample of
// the test split (the same images under every corruption). Models are written to models/ with a
// content key in their metadata (a hash of the settings, the data and the parent model's key),
// and a later run with the same output folder reuses every model whose key still matches.
//
// Patched models are computed in memory with the arithmetic of signature.Patch (each α·value
// rounded to float32, then added), so that their accuracy equals that of a file patched with
// rws patch; the tests check this on saved files.
package experiment
