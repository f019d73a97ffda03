// Package report turns the results of a study (package experiment) into a report folder:
// report.md, a self-contained report.html (tables, and PNG plots embedded as data URIs, so it
// reads in a browser with no network), results.json with every number, and the plots as PNG
// files under plots/.
//
// The plots (line plots, grouped bar charts and heatmaps, with axes, tick labels, titles and
// legends) are drawn with the standard library: image/png and a small bitmap font.
package report
