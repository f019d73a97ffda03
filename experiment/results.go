package experiment

import "time"

// Results file format: results.json holds a Results with Format and Version set.
const (
	ResultsFormat  = "rws.demo.results"
	ResultsVersion = 1
)

// Results is everything a study measured. Accuracies are fractions in [0, 1]; differences
// called "points" are percentage points.
type Results struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Config  Config    `json:"config"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Quick   bool      `json:"quick"`
	Env     Env       `json:"environment"`
	Data    DataInfo  `json:"data"`

	// Models lists every model of the study, trained or taken from the cache.
	Models []ModelInfo `json:"models"`
	// Signatures lists the signature files of the main signatures.
	Signatures []SignatureInfo `json:"signatures"`

	// Patching holds, per corruption, θ_std, θ_c and θ_std + RWS_c (α = 1) on c's test set and
	// on clean data.
	Patching []Patching     `json:"patching"`
	Summary  PatchSummary   `json:"summary"`
	Matrix   Matrix         `json:"matrix"`
	Layers   LayerDiffs     `json:"layers"`
	Cosine   Cosine         `json:"cosine"`
	Dataset  *CrossDataset  `json:"cross_dataset"`
	Alpha    AlphaSweep     `json:"alpha"`
	Compose  Composed       `json:"composition"`
	Update   UpdateTransfer `json:"update"`
	Light    []LightPoint   `json:"lightweight"`
	Targets  []Target       `json:"targets"`
	Timings  []Timing       `json:"timings"`
}

// Env describes the machine a study ran on.
type Env struct {
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// DataInfo says which images the study used.
type DataInfo struct {
	Dataset   string   `json:"dataset"`
	TrainSize int      `json:"train_size"` // the whole training split
	TestSize  int      `json:"test_size"`  // the whole test split
	Pretrain  int      `json:"pretrain"`
	Finetune  int      `json:"finetune"`
	Update    int      `json:"update"`
	Holdout   int      `json:"holdout"`
	Test      int      `json:"test"`
	CleanTest int      `json:"clean_test"` // clean images of the patching table's clean accuracies
	Sets      []string `json:"sets"`       // the evaluation sets: "clean", then the corruptions
}

// ModelInfo describes one model of the study.
type ModelInfo struct {
	Name    string  `json:"name"`
	File    string  `json:"file"` // relative to the output folder
	Key     string  `json:"key"`  // content hash of its settings, data and parent
	Parent  string  `json:"parent,omitempty"`
	Data    string  `json:"data"` // what it was trained on, in words
	Cached  bool    `json:"cached"`
	Seconds float64 `json:"train_seconds"` // training time (of the run that trained it)
	// Examples is the number of training examples seen; ExamplesPerSec the training speed.
	Examples       int     `json:"examples"`
	ExamplesPerSec float64 `json:"examples_per_sec"`
	Loss           float64 `json:"final_loss"`
	TrainAccuracy  float64 `json:"final_train_accuracy"`
}

// SignatureInfo describes a signature file.
type SignatureInfo struct {
	Corruption string   `json:"corruption"`
	File       string   `json:"file"`
	Bytes      int64    `json:"bytes"`
	ModelBytes int64    `json:"model_bytes"`
	Ratio      float64  `json:"compression_ratio"`
	Norm       float64  `json:"norm"`
	Variant    string   `json:"variant"`
	Codec      string   `json:"codec"`
	Layers     []string `json:"layers"`
}

// Patching is the main measurement for one corruption c: accuracies on c's test set and on the
// clean test set. GapClosed = (patched − std) / (robust − std) on c's test set.
type Patching struct {
	Corruption           string  `json:"corruption"`
	Geometric            bool    `json:"geometric"`
	StdAccuracy          float64 `json:"std_accuracy"`
	RobustAccuracy       float64 `json:"robust_accuracy"`
	PatchedAccuracy      float64 `json:"patched_accuracy"`
	GapClosed            float64 `json:"gap_closed"`
	StdCleanAccuracy     float64 `json:"std_clean_accuracy"`
	PatchedCleanAccuracy float64 `json:"patched_clean_accuracy"`
	RobustCleanAccuracy  float64 `json:"robust_clean_accuracy"`
	// CleanDrop is θ_std's clean accuracy minus the patched model's, in points, measured on the
	// same images; CleanDropSE is its standard error (paired: from the images they disagree on).
	CleanDrop   float64 `json:"clean_drop_points"`
	CleanDropSE float64 `json:"clean_drop_se_points"`
}

// PatchSummary summarises Patching.
type PatchSummary struct {
	MeanGapClosed             float64 `json:"mean_gap_closed"`
	MeanGapClosedNonGeometric float64 `json:"mean_gap_closed_non_geometric"`
	MeanGapClosedGeometric    float64 `json:"mean_gap_closed_geometric"`
	// PooledGapClosed is Σ(patched − std) / Σ(robust − std): less sensitive to small gaps.
	PooledGapClosed float64 `json:"pooled_gap_closed"`
	// SmallGaps lists corruptions whose gap robust − std is under one point (their ratio is noisy).
	SmallGaps        []string `json:"small_gaps"`
	MeanStd          float64  `json:"mean_std_accuracy"`
	MeanRobust       float64  `json:"mean_robust_accuracy"`
	MeanPatched      float64  `json:"mean_patched_accuracy"`
	StdClean         float64  `json:"std_clean_accuracy"`
	MeanPatchedClean float64  `json:"mean_patched_clean_accuracy"`
	// MeanCleanDrop and MaxCleanDrop are in points: θ_std's clean accuracy minus the patched one.
	MeanCleanDrop float64 `json:"mean_clean_drop_points"`
	MaxCleanDrop  float64 `json:"max_clean_drop_points"`
	// MaxCleanDropSE and MaxCleanDropCorruption belong to the largest drop.
	MaxCleanDropSE         float64 `json:"max_clean_drop_se_points"`
	MaxCleanDropCorruption string  `json:"max_clean_drop_corruption"`
	// MaxCleanDropBeyondNoise is the largest drop − 2 SE: above 0.5 pt only where a corruption's
	// clean drop exceeds half a point by more than sampling noise explains.
	MaxCleanDropBeyondNoise float64 `json:"max_clean_drop_beyond_noise_points"`
	InitClean               float64 `json:"init_clean_accuracy"`
}

// Matrix holds accuracies on every evaluation set (Sets: "clean", then the corruptions): of
// θ0 and θ_std, and per corruption (rows, in Corruptions order) of θ_c and of θ_std + RWS_c.
// Cells of a row on other corruptions than its own use the first OtherImages images of the set.
type Matrix struct {
	Sets        []string    `json:"sets"`
	OtherImages int         `json:"other_images"`
	Init        []float64   `json:"init"`
	Std         []float64   `json:"std"`
	Corruptions []string    `json:"corruptions"`
	Robust      [][]float64 `json:"robust"`
	Patched     [][]float64 `json:"patched"`
}

// LayerDiffs is observation 1: per weight layer, ‖θ_c − θ_std‖ / ‖θ_std‖ over its weight and
// bias, per corruption.
type LayerDiffs struct {
	Layers      []string    `json:"layers"`
	Corruptions []string    `json:"corruptions"`
	Relative    [][]float64 `json:"relative"` // [corruption][layer]
	Mean        []float64   `json:"mean"`     // over corruptions
	// SignatureLayers is how many leading layers the signature keeps.
	SignatureLayers int `json:"signature_layers"`
	// ShareOfRelative is the signature layers' share of the summed mean relative differences;
	// ShareOfSquared their share of Σ‖θ_c − θ_std‖² (dominated by large layers).
	ShareOfRelative float64 `json:"share_of_relative"`
	ShareOfSquared  float64 `json:"share_of_squared"`
	// RatioFirstToRest is the mean relative difference of the signature layers over that of
	// the other layers.
	RatioFirstToRest float64 `json:"ratio_first_to_rest"`
}

// Cosine is observation 2: cosine similarity of signatures.
type Cosine struct {
	Corruptions []string `json:"corruptions"`
	// Layers are the modules the main figures use (the first two layers).
	Layers []string `json:"layers"`
	// Matrix is over Layers; MatrixAll over all signature layers.
	Matrix    [][]float64 `json:"matrix"`
	MatrixAll [][]float64 `json:"matrix_all"`
	// MeanCross is the mean off-diagonal entry of Matrix; MaxCross the largest.
	MeanCross    float64 `json:"mean_cross"`
	MaxCross     float64 `json:"max_cross"`
	MeanCrossAll float64 `json:"mean_cross_all"`
	// Seeds holds the same corruption's signatures from the two training seeds.
	Seeds       []SeedPair `json:"seeds"`
	MeanSeed    float64    `json:"mean_seed"`
	MeanSeedAll float64    `json:"mean_seed_all"`
	// NearestCorrect counts seed-2 signatures whose most similar seed-1 signature is their own
	// corruption's.
	NearestCorrect int `json:"nearest_correct"`
}

// SeedPair compares one corruption's signatures from two seeds.
type SeedPair struct {
	Corruption string  `json:"corruption"`
	Cosine     float64 `json:"cosine"`     // over Cosine.Layers
	CosineAll  float64 `json:"cosine_all"` // over all signature layers
	// Nearest is the seed-1 signature most similar to the seed-2 one.
	Nearest string `json:"nearest"`
	// PatchedAccuracy is θ_std + the seed-2 signature on c's test set.
	PatchedAccuracy float64 `json:"patched_accuracy"`
}

// CrossDataset is observation 3: the same corruptions on a second dataset, fine-tuned from the
// same θ0.
type CrossDataset struct {
	Dataset   string `json:"dataset"`
	Available bool   `json:"available"`
	// Note explains why the part is missing (and how to add it) when not Available.
	Note        string      `json:"note,omitempty"`
	StdClean    float64     `json:"std_clean_accuracy"`
	Corruptions []CrossItem `json:"corruptions"`
	// Matrix is the cosine of every first-dataset signature (rows) with every second-dataset
	// signature (columns), over all signature layers.
	Matrix            [][]float64 `json:"matrix"`
	MeanSame          float64     `json:"mean_same_corruption_cosine"`
	MeanOther         float64     `json:"mean_other_corruption_cosine"`
	MeanOwnGap        float64     `json:"mean_own_gap_closed"`
	MeanTransferGap   float64     `json:"mean_transfer_gap_closed"`
	PooledOwnGap      float64     `json:"pooled_own_gap_closed"`
	PooledTransferGap float64     `json:"pooled_transfer_gap_closed"`
}

// CrossItem is one corruption on the second dataset.
type CrossItem struct {
	Corruption string  `json:"corruption"`
	Cosine     float64 `json:"cosine"`       // first vs second dataset signature, all layers
	CosineTop  float64 `json:"cosine_first"` // over the first two layers
	Std        float64 `json:"std_accuracy"`
	Robust     float64 `json:"robust_accuracy"`
	// Own is θ_std + its own dataset's signature; Transfer θ_std + the first dataset's.
	Own           float64 `json:"own_patched_accuracy"`
	Transfer      float64 `json:"transfer_patched_accuracy"`
	OwnGap        float64 `json:"own_gap_closed"`
	TransferGap   float64 `json:"transfer_gap_closed"`
	OwnClean      float64 `json:"own_patched_clean_accuracy"`
	TransferClean float64 `json:"transfer_patched_clean_accuracy"`
}

// AlphaSweep is accuracy as the strength α of each signature varies.
type AlphaSweep struct {
	Values []float64     `json:"values"`
	Items  []AlphaSeries `json:"corruptions"`
	// MeanCorrupted and MeanClean average Items over corruptions, per α.
	MeanCorrupted []float64 `json:"mean_corrupted"`
	MeanClean     []float64 `json:"mean_clean"`
	// BestAlpha is the α of highest MeanCorrupted.
	BestAlpha float64 `json:"best_alpha"`
	// Unpatch records the exact-removal check.
	Unpatch UnpatchCheck `json:"unpatch"`
}

// AlphaSeries is one corruption's sweep: accuracies on its test set and on clean data.
type AlphaSeries struct {
	Corruption string    `json:"corruption"`
	Corrupted  []float64 `json:"corrupted"`
	Clean      []float64 `json:"clean"`
}

// UnpatchCheck records that patching a checkpoint file and unpatching it gave back the file.
type UnpatchCheck struct {
	Model      string    `json:"model"`
	Signatures []string  `json:"signatures"`
	Alphas     []float64 `json:"alphas"`
	Checked    int       `json:"checked"`
	Identical  int       `json:"identical"`
	Exact      bool      `json:"exact"`
	// PatchedFile is a patched checkpoint kept for inspection; its accuracy on its corruption's
	// test set, read back from the file, is PatchedFileAccuracy.
	PatchedFile         string  `json:"patched_file"`
	PatchedFileAccuracy float64 `json:"patched_file_accuracy"`
	InMemoryAccuracy    float64 `json:"in_memory_accuracy"`
}

// Composed compares ways of applying all signatures at once.
type Composed struct {
	Rules []Rule `json:"rules"`
	// Sets are the evaluation sets of Rule.Accuracy ("clean", then the corruptions).
	Sets []string `json:"sets"`
	// Holdout is the number of held-out images per set the choices were made on.
	Holdout int `json:"holdout"`
}

// Rule is one composition rule (or a reference model) with its accuracies.
type Rule struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Lambda is the scale chosen on held-out data (0 when the rule has none); Alphas the
	// per-signature strengths (nil for TIES and models).
	Lambda        float64            `json:"lambda,omitempty"`
	Alphas        map[string]float64 `json:"alphas,omitempty"`
	Search        []LambdaScore      `json:"search,omitempty"`
	Accuracy      []float64          `json:"accuracy"` // per set
	MeanCorrupted float64            `json:"mean_corrupted"`
	Clean         float64            `json:"clean"`
	// Note says when the held-out choice could not meet its clean-accuracy bound.
	Note string `json:"note,omitempty"`
}

// LambdaScore is one scale tried on held-out data.
type LambdaScore struct {
	Lambda        float64 `json:"lambda"`
	MeanCorrupted float64 `json:"mean_corrupted"`
	Clean         float64 `json:"clean"`
}

// UpdateTransfer is the transfer of signatures to an updated backbone: θ_std trained further on
// clean data, patched with the signatures extracted against θ_std.
type UpdateTransfer struct {
	UpdatedClean float64      `json:"updated_clean_accuracy"`
	StdClean     float64      `json:"std_clean_accuracy"`
	Items        []UpdateItem `json:"corruptions"`
	MeanGap      float64      `json:"mean_gap_closed"`
	PooledGap    float64      `json:"pooled_gap_closed"`
	MeanUpdated  float64      `json:"mean_updated_accuracy"`
	MeanPatched  float64      `json:"mean_patched_accuracy"`
	// Differ is the relative distance ‖θ_upd − θ_std‖ / ‖θ_std‖ over the signature layers.
	Differ float64 `json:"relative_change_of_signature_layers"`
}

// UpdateItem is one corruption on the updated backbone.
type UpdateItem struct {
	Corruption string  `json:"corruption"`
	Updated    float64 `json:"updated_accuracy"`
	Patched    float64 `json:"patched_accuracy"`
	Robust     float64 `json:"robust_accuracy"`
	GapClosed  float64 `json:"gap_closed"` // (patched − updated) / (robust − updated)
	Clean      float64 `json:"patched_clean_accuracy"`
}

// LightPoint is one signature variant: its size and the accuracy it gives.
type LightPoint struct {
	Codec  string `json:"codec"` // "none", "linear", …
	Bits   int    `json:"bits"`  // 32 for none
	Layers int    `json:"layers"`
	// Bytes is the mean signature file size over corruptions; Ratio the full model's float32
	// size over it.
	Bytes float64 `json:"bytes"`
	Ratio float64 `json:"compression_ratio"`
	// MeanCorrupted is the mean over corruptions of θ_std + RWS_c on c's test set; MeanClean
	// on the first Matrix.OtherImages clean test images; RelError the mean relative quantization error.
	MeanCorrupted float64 `json:"mean_corrupted"`
	MeanClean     float64 `json:"mean_clean"`
	RelError      float64 `json:"rel_error"`
	// LossPoints is the unquantized signature's MeanCorrupted (same layers) minus this one, in points.
	LossPoints float64 `json:"loss_points"`
}

// Target is one claim of the method with the value measured and whether it holds.
type Target struct {
	Claim string  `json:"claim"`
	Want  string  `json:"want"`
	Value float64 `json:"value"`
	Shown string  `json:"shown"` // Value as the report prints it
	Met   bool    `json:"met"`
	Note  string  `json:"note,omitempty"`
}

// Timing is the wall time of one stage of the study.
type Timing struct {
	Stage   string  `json:"stage"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}
