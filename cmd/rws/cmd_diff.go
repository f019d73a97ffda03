package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/rws-project/rws/diff"
	"github.com/rws-project/rws/layer"
)

func init() {
	register(&command{
		name:    "diff",
		summary: "compare two checkpoints tensor by tensor and say where they differ",
		usage:   "rws diff [--json] [--order MODULES] A B",
		run:     runDiff,
	})
}

func runDiff(ctx context.Context, a *app, args []string) error {
	c := commands["diff"]
	fs := a.flagSet(c)
	asJSON := fs.Bool("json", false, "print JSON: {tensors:[{name,l2,relative,cosine,…}], only_in_a, only_in_b, mismatched, layers, summary}")
	order := fs.String("order", "", "module order from the input, comma-separated (default: recorded or natural)")
	files, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return usagef("diff: want two files A B, got %d", len(files))
	}
	for _, f := range files {
		if err := recoverModel(a, f); err != nil {
			return err
		}
	}
	rep, err := diff.Files(files[0], files[1], diff.Options{Order: layer.ParseStated(*order)})
	if err != nil {
		return err
	}
	if *asJSON {
		return a.json(rep)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tl2\trelative\tcosine")
	for _, t := range rep.Tensors {
		fmt.Fprintf(tw, "%s\t%.4g\t%.4g\t%.6f\n", t.Name, t.L2, t.Relative, t.Cosine)
	}
	tw.Flush()
	if len(rep.Layers) > 0 {
		a.printf("\nshare of the squared difference per layer, from the input:\n")
		tw = tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		for _, l := range rep.Layers {
			fmt.Fprintf(tw, "  %s\t%5.1f%%\trelative %.3g\n", l.Layer, 100*l.Share, l.Relative)
		}
		tw.Flush()
	}
	for _, n := range rep.OnlyInA {
		a.printf("only in %s: %s\n", files[0], n)
	}
	for _, n := range rep.OnlyInB {
		a.printf("only in %s: %s\n", files[1], n)
	}
	for _, m := range rep.Mismatched {
		a.printf("not compared: %s: %s %v in A, %s %v in B\n", m.Name, m.DTypeA, m.ShapeA, m.DTypeB, m.ShapeB)
	}
	a.printf("\n%s\n", rep.Summary)
	return nil
}
