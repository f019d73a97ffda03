// Package signature extracts robust weight signatures from checkpoints, stores them in
// signature files, and applies them to models and removes them again (../shared/METHODS.md §1).
//
// # Extraction
//
// For every selected tensor k, flattened, with a = θ_std[k] − θ₀[k] and d = θ_c[k] − θ₀[k]
// (θ_c averaged over the robust models given), the Projection variant is
//
//	RWS[k] = d − (⟨d, a⟩ / ⟨a, a⟩) · a      (d when ⟨a, a⟩ = 0)
//
// with sums and products in float64, rounded once to float32. Without θ₀ the Difference variant
// θ_c − θ_std is stored instead. Extraction reads the checkpoints block by block, tensors on
// all cores at once, but takes every sum in element order, so the result is bit for bit that of
// one loop over each whole tensor. Layers are chosen by units: a weight layer (convolution or
// linear) with its bias and the normalization layers that follow it (their affine weight and
// bias; running statistics are never signature material); the classifier head is only included
// when a name pattern asks for it.
//
// With ExtractOptions.BNStats the signature also carries the robust models' batch-norm running
// statistics (running_mean, running_var) of the batch-norm layers among the chosen ones: not a
// difference but the statistics themselves, averaged over the robust models in float64 and
// rounded once into their type (RunningStat). num_batches_tracked, a step count, is left out.
//
// # Signature files
//
// A signature file (.rws) is a safetensors file. With codec none, each signature tensor is
// stored under its model name, shape and float type. With a quantizing codec, tensor NAME is
// stored as NAME:codes (U8, the packed codes of package quant) and NAME:params (F32,
// [groups, 2], the codec's parameters per group). __metadata__ holds, all as strings:
//
//	format                             "rws.signature"
//	rws.signature.version              "1", or "2" when the file carries running statistics
//	                                   (readers accept MinVersion to MaxVersion)
//	rws.signature.name                 the signature's name, e.g. "fog"
//	rws.signature.variant              "projection" or "difference"
//	rws.signature.codec, .bits         the codec ("none", "linear", "log", "tanh", "gauss") and
//	                                   code width (32 for none)
//	rws.signature.granularity          "tensor" or "channel"
//	rws.signature.layers               JSON array of the module names covered, from the input
//	rws.signature.selection            how the layers were chosen, in words
//	rws.signature.tensors              JSON array, one object per tensor: name, shape, dtype
//	                                   (the clean model's), groups, sha256 of the stored bytes,
//	                                   source_sha256 {init, clean, robust[]} of the source
//	                                   tensors' raw bytes, norm, max_error, rel_error
//	rws.signature.bn_stats             version 2 only: JSON array, one object per running
//	                                   statistic: name, shape, dtype (the robust models', in
//	                                   which the values are stored raw under the name), sha256
//	                                   of the stored bytes, source_sha256 {clean, robust[]}
//	rws.signature.sources              JSON {init, clean, robust[]}: the source paths given
//	rws.signature.command              the extraction command line
//	rws.signature.model_bytes          the full clean model's size as a float32 checkpoint
//	rws.signature.file_bytes           this file's size
//	rws.signature.compression_ratio    model_bytes / file_bytes, two decimals
//
// Read verifies every stored tensor, running statistics included, against its SHA-256, so a
// damaged file is refused.
//
// # Patching and exact removal
//
// Patch computes θ = θ_patch + Σ α·RWS in float32 (float64 for F64 tensors) and rounds once into
// the tensor's type; tensors the signatures do not cover are copied byte for byte (in the kernel
// where possible). Batch-norm running statistics are left as they are unless PatchOptions.BNStats
// is SignatureStats: then each statistic a signature carries replaces the model's as
// (1−α)·model + α·signature, with that signature's α (see StatsPolicy), and the report and the
// patch record name them. Floating-point subtraction does not undo that addition, so removal does
// not rely on it: the patched file's metadata gains rws.patch (the history of patches) and
// rws.undo, a JSON record with the original header (DEFLATE) and, per touched tensor (a replaced
// statistic is one too), the SHA-256 of its original and patched bytes and the XOR of the
// original bytes with a prediction of them (byte planes split, DEFLATE, base64). The prediction
// is the patched bytes themselves, or the patched bytes minus the signature terms, recomputed
// with the same roundings in reverse (the terms, i.e. α and the signature's stored codes, are
// then stored too): that prediction is right for most values, so its XOR compresses to almost
// nothing and a quantized signature's undo record costs little more than the signature. Patch
// keeps the smaller of the two per tensor, except for an unquantized patch of at most a 64th of a
// model: its XOR is stored uncompressed (DEFLATE stored blocks), so that the header's length is
// known before the record is computed and the model is copied meanwhile. The data section keeps
// the original's alignment modulo 4 KiB, or 2 MiB from 256 MiB of data, so that the kernel copies
// it in whole pages. The header is refused above the 100 MB safetensors readers accept (a patch
// in place has no such limit). Unpatch writes the original header followed by the
// data section with each touched tensor rebuilt as prediction XOR residual and checked against
// its SHA-256, so the result is the original file byte for byte by construction; it refuses a
// file whose patched tensors changed since.
//
// PatchInPlace cannot grow the header, so it leaves it alone and keeps the original bytes of the
// touched tensors in a sidecar, MODEL.rws-undo; a journal (MODEL.rws-journal, written and synced
// before the model is touched) makes it crash-safe, and Recover completes or rolls back an
// interrupted operation. UnpatchInPlace and Unpatch take the newest in-place patch first.
//
// # Sharded checkpoints
//
// A sharded checkpoint (NAME.safetensors.index.json and its shards) is patched shard by shard
// with the single-file machinery above; the index is never changed. Every shard a sharded patch
// changes records it with its own patch (SetPatch: an id shared by those shards, the patch's place
// in the checkpoint's history, and the shards changed), so the shards tell together which sharded
// patch is the newest, and Unpatch and UnpatchInPlace remove exactly that one from every shard it
// changed, for any stack of patches in and out of place. Several files cannot be replaced by one
// rename, so an in-place patch or unpatch keeps a journal beside the index, INDEX.rws-journal,
// and an output is staged in a hidden folder beside it and moved into place after a commit
// rename; Recover of the index rolls back, completes, or removes what a crash interrupted
// (shardjournal.go describes the journal and the recovery rules).
package signature
