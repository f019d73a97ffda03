package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SetPatch ties the patch of one shard to the patch of its sharded checkpoint. Every shard that a
// sharded patch changes records the same SetPatch with its own patch (PatchEntry.Set, in the
// MetaPatch history for a patch out of place, in the undo sidecar for one in place), so that the
// shards tell together which sharded patch is the newest and which shards it changed; the index
// itself is never changed.
type SetPatch struct {
	// ID identifies the sharded patch (16 hex digits, see setID).
	ID string `json:"id"`
	// Seq is the patch's place in the checkpoint's history of sharded patches: 1 for the first,
	// and one more than the newest recorded for every later one.
	Seq int `json:"seq"`
	// Shards lists the shard files the patch changed, relative to the index's folder, sorted.
	Shards []string `json:"shards"`
}

// shardHistory is the patch history of a sharded checkpoint, as its shards record it.
type shardHistory struct {
	index string
	files []string
	of    map[string][]PatchEntry // each shard's history (History), oldest first
	// patches are the sharded patches recorded (entries with a SetPatch), oldest first.
	patches []*shardedPatch
	// untagged counts, per shard, the patches recorded without a SetPatch: made on the shard
	// alone, or by an rws that did not record sharded histories.
	untagged map[string]int
}

// shardedPatch is one sharded patch: its SetPatch and the entries of the shards that carry it.
type shardedPatch struct {
	SetPatch
	inPlace bool
	entries map[string]PatchEntry
}

// readShardHistory reads the patch history of every shard of sh and checks that the shards agree
// on the sharded patches they record.
func readShardHistory(sh *shards) (*shardHistory, error) {
	h := &shardHistory{index: sh.index, files: sh.files, of: map[string][]PatchEntry{}, untagged: map[string]int{}}
	byID := map[string]*shardedPatch{}
	dir := filepath.Dir(sh.index)
	for _, f := range sh.files {
		es, err := History(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		h.of[f] = es
		last := 0
		for _, e := range es {
			if e.Set == nil {
				h.untagged[f]++
				continue
			}
			if e.Set.Seq <= last {
				return nil, fmt.Errorf("signature: %s: shard %s records sharded patch %s as #%d after #%d: its history is damaged", sh.index, f, e.Set.ID, e.Set.Seq, last)
			}
			last = e.Set.Seq
			p := byID[e.Set.ID]
			if p == nil {
				p = &shardedPatch{SetPatch: *e.Set, inPlace: e.InPlace, entries: map[string]PatchEntry{}}
				byID[e.Set.ID] = p
				h.patches = append(h.patches, p)
			} else if p.Seq != e.Set.Seq || !slices.Equal(p.Shards, e.Set.Shards) || p.inPlace != e.InPlace {
				return nil, fmt.Errorf("signature: %s: shards %s and %s record sharded patch %s differently: they come from different checkpoints", sh.index, firstKey(p.entries), f, p.ID)
			}
			if !slices.Contains(p.Shards, f) {
				return nil, fmt.Errorf("signature: %s: shard %s carries sharded patch %s, which does not list it: its history is damaged", sh.index, f, p.ID)
			}
			p.entries[f] = e
		}
	}
	sort.SliceStable(h.patches, func(i, j int) bool { return h.patches[i].Seq < h.patches[j].Seq })
	for i := 1; i < len(h.patches); i++ {
		if a, b := h.patches[i-1], h.patches[i]; a.Seq == b.Seq {
			return nil, fmt.Errorf("signature: %s: shards %s and %s record different sharded patches (%s, %s) as #%d: they come from different patched checkpoints", sh.index, firstKey(a.entries), firstKey(b.entries), a.ID, b.ID, a.Seq)
		}
	}
	return h, nil
}

func firstKey[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// depth is the Seq of the newest sharded patch, 0 when there is none.
func (h *shardHistory) depth() int {
	if len(h.patches) == 0 {
		return 0
	}
	return h.patches[len(h.patches)-1].Seq
}

// newest returns the newest sharded patch after checking that it can be removed: every shard it
// lists is named by the index, carries it, and carries nothing newer.
func (h *shardHistory) newest() (*shardedPatch, error) {
	p := h.patches[len(h.patches)-1]
	for _, f := range p.Shards {
		es, ok := h.of[f]
		if !ok {
			return nil, fmt.Errorf("signature: %s: sharded patch %s changed shard %s, which the index does not name", h.index, p.ID, f)
		}
		if _, ok := p.entries[f]; !ok {
			return nil, fmt.Errorf("signature: %s: sharded patch %s changed shard %s, which does not record it (was the shard replaced?)", h.index, p.ID, f)
		}
		top := es[len(es)-1]
		if top.Set == nil || top.Set.ID != p.ID {
			where := "rws unpatch --in-place " + filepath.Join(filepath.Dir(h.index), f)
			if !top.InPlace {
				where = "rws unpatch " + filepath.Join(filepath.Dir(h.index), f) + " -o OUT"
			}
			return nil, fmt.Errorf("signature: %s: shard %s carries patch %s, made on the shard alone after sharded patch %s; remove it first (%s)", h.index, f, top.ID, p.ID, where)
		}
	}
	return p, nil
}

// legacy returns the shards that carry the patch of an rws that recorded no sharded history,
// which patched sharded checkpoints out of place only: at most one patch per shard, out of place
// and recording no sharded patch, which together make that patch.
func (h *shardHistory) legacy() ([]string, error) {
	var patched []string
	for _, f := range h.files {
		n := h.untagged[f]
		if n == 0 {
			continue
		}
		p := filepath.Join(filepath.Dir(h.index), f)
		if es := h.of[f]; es[len(es)-1].InPlace && es[len(es)-1].Set == nil {
			return nil, fmt.Errorf("signature: %s: shard %s carries patch %s, made in place on the shard alone; remove it first (rws unpatch --in-place %s)", h.index, f, es[len(es)-1].ID, p)
		}
		if n > 1 {
			return nil, fmt.Errorf("signature: shard %s of %s carries %d patches that record no sharded patch (made on the shard alone, or by an older rws), so which shards the last one changed cannot be told; unpatch its shards one by one (rws unpatch SHARD -o OUT)", p, h.index, n)
		}
		patched = append(patched, f)
	}
	return patched, nil
}

// entry is the sharded patch as one history entry: its id, the signatures with their tensors
// counted over all shards, and the tensors of every shard in shard order.
func (p *shardedPatch) entry() PatchEntry {
	e := PatchEntry{ID: p.ID, InPlace: p.inPlace, Set: &p.SetPatch}
	var parts []PatchEntry
	for _, f := range p.Shards {
		if pe, ok := p.entries[f]; ok {
			parts = append(parts, pe)
		}
	}
	return mergeEntries(e, parts)
}

// mergeEntries fills e with the signatures and tensors of the shard entries parts: a signature
// applied to several shards appears once, with its tensors counted over them.
func mergeEntries(e PatchEntry, parts []PatchEntry) PatchEntry {
	index := map[string]int{}
	for _, pe := range parts {
		if e.Command == "" {
			e.Command = pe.Command
		}
		e.Tensors = append(e.Tensors, pe.Tensors...)
		for _, s := range pe.Signatures {
			key := s.SHA256 + " " + s.File + " " + s.Name + " " + strconv.FormatFloat(s.Alpha, 'g', -1, 64)
			i, ok := index[key]
			if !ok {
				index[key] = len(e.Signatures)
				s.Differ = append([]string(nil), s.Differ...)
				s.Stats = append([]string(nil), s.Stats...)
				e.Signatures = append(e.Signatures, s)
				continue
			}
			m := &e.Signatures[i]
			m.Tensors += s.Tensors
			m.Transfer = m.Transfer || s.Transfer
			m.Differ = append(m.Differ, s.Differ...)
			m.Stats = append(m.Stats, s.Stats...)
		}
	}
	return e
}

// shardedHistory is History for a sharded checkpoint: its sharded patches, oldest first. Patches
// that a shard records without a sharded patch (made on the shard alone) are in that shard's
// History, not here, except those of an older rws, which recorded no sharded history: when each
// shard carries at most one, they are listed first as the one patch they were made as.
func shardedHistory(index string) ([]PatchEntry, error) {
	sh, err := openShards(index)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	h, err := readShardHistory(sh)
	if err != nil {
		return nil, err
	}
	var out []PatchEntry
	if old, err := h.legacy(); err == nil && len(old) > 0 {
		var parts []PatchEntry
		var ids []string
		for _, f := range old {
			for _, e := range h.of[f] {
				if e.Set == nil {
					parts = append(parts, e)
					ids = append(ids, e.ID)
				}
			}
		}
		out = append(out, mergeEntries(PatchEntry{ID: shardedID(ids), InPlace: parts[0].InPlace}, parts))
	}
	for _, p := range h.patches {
		out = append(out, p.entry())
	}
	return out, nil
}

// setID is the identifier of a new sharded patch, seq-th of the checkpoint: a digest of the index,
// seq, whether it is made in place, the header and size of each shard it changes, and the
// signatures with their strengths. The sharded patches of one checkpoint have different seq, so
// their identifiers differ.
func setID(sh *shards, seq int, inPlace bool, touched []string, sigs []Applied) (string, error) {
	h := sha256.New()
	h.Write(sh.raw)
	fmt.Fprintf(h, "\nseq %d in-place %t\n", seq, inPlace)
	dir := filepath.Dir(sh.index)
	for _, f := range touched {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("signature: %w", err)
		}
		hdr, err := readHeader(fh)
		st, serr := fh.Stat()
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("signature: %s: %w", fh.Name(), err)
		}
		if serr != nil {
			return "", serr
		}
		fmt.Fprintf(h, "%s %d %s\n", f, st.Size(), hexSHA256(hdr))
	}
	for _, a := range sigs {
		sum := a.Sig.FileSHA256
		if sum == "" {
			var b strings.Builder
			for _, t := range a.Sig.Tensors {
				b.WriteString(t.Name + " " + t.storedSHA256() + "\n")
			}
			sum = hexSHA256([]byte(b.String()))
		}
		fmt.Fprintf(h, "%s %s\n", sum, strconv.FormatFloat(a.Alpha, 'g', -1, 64))
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
