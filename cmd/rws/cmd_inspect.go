package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/rws-project/rws/inspect"
	"github.com/rws-project/rws/layer"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "list a checkpoint's tensors (layer order from the input), sizes and metadata",
		usage: `rws inspect [--json] [--stats] [--order MODULES] FILE...

A signature file or a patched model whose records fail their checks (a damaged tensor, a
patch history that does not read) is shown as far as it can be, then reported with exit code 3.`,
		run: runInspect,
	})
}

// describers explain special files in words; packages that own a file format add theirs
// (signature files do). A describer returns its text, whether it had anything to say, and an
// error when the file failed its checks (the text then says why).
var describers []func(path string, meta map[string]string) (string, bool, error)

func runInspect(ctx context.Context, a *app, args []string) error {
	c := commands["inspect"]
	fs := a.flagSet(c)
	asJSON := fs.Bool("json", false, "print JSON: {path, tensors:[{name,dtype,shape,bytes,…}], metadata, …}")
	stats := fs.Bool("stats", false, "read every tensor and print min, max, mean, std and non-finite counts")
	order := fs.String("order", "", "module order from the input, comma-separated (default: recorded or natural)")
	files, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("inspect: no FILE given")
	}
	var reps []*inspect.Report
	for _, f := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := recoverModel(a, f); err != nil {
			return err
		}
		rep, err := inspect.File(f, inspect.Options{Stats: *stats, Order: layer.ParseStated(*order)})
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	// A damaged signature or patch record is shown, then reported as a failed verification.
	var failed []string
	for _, rep := range reps {
		for _, d := range describers {
			if _, _, err := d(rep.Path, rep.Metadata); err != nil {
				failed = append(failed, rep.Path)
				break
			}
		}
	}
	if *asJSON {
		var err error
		if len(reps) == 1 {
			err = a.json(reps[0])
		} else {
			err = a.json(reps)
		}
		if err != nil {
			return err
		}
	} else {
		for i, rep := range reps {
			if i > 0 {
				a.printf("\n")
			}
			printInspect(a, rep, *stats)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s did not pass its checks (see above)", errVerify, strings.Join(failed, ", "))
	}
	return nil
}

func printInspect(a *app, rep *inspect.Report, stats bool) {
	a.printf("%s\n", rep.Path)
	for _, d := range describers {
		if text, ok, _ := d(rep.Path, rep.Metadata); ok {
			a.printf("%s\n", text)
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	header := "tensor\tdtype\tshape\tparameters\tbytes"
	if stats {
		header += "\tmin\tmax\tmean\tstd\tnon-finite"
	}
	fmt.Fprintln(tw, header)
	for _, t := range rep.Tensors {
		line := fmt.Sprintf("%s\t%s\t%v\t%d\t%d", t.Name, t.DType, t.Shape, t.Parameters, t.Bytes)
		if stats && t.Stats != nil {
			s := t.Stats
			line += fmt.Sprintf("\t%.4g\t%.4g\t%.4g\t%.4g\t%d", s.Min, s.Max, s.Mean, s.Std, s.NonFinite)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	a.printf("total: %d tensors in %d layers, %d parameters, %s\n", len(rep.Tensors), rep.Layers,
		rep.Parameters, inspect.HumanBytes(rep.Bytes))
	if len(rep.Metadata) > 0 {
		a.printf("metadata:\n")
		for _, k := range sortedKeys(rep.Metadata) {
			v := rep.Metadata[k]
			if len(v) > 120 {
				v = v[:117] + "..."
			}
			a.printf("  %s: %s\n", k, strings.ReplaceAll(v, "\n", " "))
		}
	}
}
