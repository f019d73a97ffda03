package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// The plots are drawn with the standard library only: a canvas of image.RGBA, straight lines,
// filled rectangles and the 5×8 bitmap font of font.go drawn at an integer scale.

// canvas is an image being drawn.
type canvas struct {
	img *image.RGBA
}

var (
	white     = color.RGBA{255, 255, 255, 255}
	black     = color.RGBA{0, 0, 0, 255}
	gridGrey  = color.RGBA{225, 225, 225, 255}
	axisGrey  = color.RGBA{90, 90, 90, 255}
	textColor = color.RGBA{30, 30, 30, 255}
)

// palette holds distinct series colours (the 10 of matplotlib's "tab10", then 10 of "tab20"'s
// light ones).
var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
	{174, 199, 232, 255}, {255, 187, 120, 255}, {152, 223, 138, 255}, {255, 152, 150, 255}, {197, 176, 213, 255},
	{196, 156, 148, 255}, {247, 182, 210, 255}, {199, 199, 199, 255}, {219, 219, 141, 255}, {158, 218, 229, 255},
}

func seriesColor(i int) color.RGBA { return palette[i%len(palette)] }

func newCanvas(w, h int) *canvas {
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	c.fill(0, 0, w, h, white)
	return c
}

func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

// fill paints the rectangle [x0, x1) × [y0, y1).
func (c *canvas) fill(x0, y0, x1, y1 int, col color.RGBA) {
	if x0 > x1 {
		x0, x1 = x1, x0
	}
	if y0 > y1 {
		y0, y1 = y1, y0
	}
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			c.set(x, y, col)
		}
	}
}

// line draws a line of the given width from (x0, y0) to (x1, y1); dash > 0 draws dashes of
// that many pixels.
func (c *canvas) line(x0, y0, x1, y1 float64, width int, col color.RGBA, dash int) {
	dx, dy := x1-x0, y1-y0
	n := int(math.Max(math.Abs(dx), math.Abs(dy))) + 1
	for i := 0; i <= n; i++ {
		if dash > 0 && (i/dash)%2 == 1 {
			continue
		}
		t := float64(i) / float64(n)
		x, y := int(math.Round(x0+t*dx)), int(math.Round(y0+t*dy))
		for a := -(width - 1) / 2; a <= width/2; a++ {
			for b := -(width - 1) / 2; b <= width/2; b++ {
				c.set(x+a, y+b, col)
			}
		}
	}
}

// rect draws a rectangle's outline.
func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	c.fill(x0, y0, x1, y0+1, col)
	c.fill(x0, y1-1, x1, y1, col)
	c.fill(x0, y0, x0+1, y1, col)
	c.fill(x1-1, y0, x1, y1, col)
}

// textWidth is the width in pixels of s drawn at scale.
func textWidth(s string, scale int) int { return len([]rune(s)) * 6 * scale }

// textHeight is the height of a line of text at scale.
func textHeight(scale int) int { return 8 * scale }

// text draws s with its top-left corner at (x, y).
func (c *canvas) text(x, y int, s string, scale int, col color.RGBA) {
	for i, r := range []rune(s) {
		g := glyphOf(r)
		for cx := 0; cx < 5; cx++ {
			for cy := 0; cy < 8; cy++ {
				if g[cx]>>cy&1 == 1 {
					c.fill(x+(i*6+cx)*scale, y+cy*scale, x+(i*6+cx+1)*scale, y+(cy+1)*scale, col)
				}
			}
		}
	}
}

// textAligned draws s at (x, y) aligned horizontally by ha ('l', 'c', 'r') and vertically by
// va ('t', 'm', 'b').
func (c *canvas) textAligned(x, y int, s string, scale int, col color.RGBA, ha, va byte) {
	w, h := textWidth(s, scale), textHeight(scale)
	switch ha {
	case 'c':
		x -= w / 2
	case 'r':
		x -= w
	}
	switch va {
	case 'm':
		y -= h / 2
	case 'b':
		y -= h
	}
	c.text(x, y, s, scale, col)
}

// textUp draws s rotated 90° counter-clockwise (read from bottom to top), its baseline box's
// bottom-left corner at (x, y): the text occupies [x, x+8·scale) × (y − width, y].
func (c *canvas) textUp(x, y int, s string, scale int, col color.RGBA) {
	for i, r := range []rune(s) {
		g := glyphOf(r)
		for cx := 0; cx < 5; cx++ {
			for cy := 0; cy < 8; cy++ {
				if g[cx]>>cy&1 == 1 {
					px := x + cy*scale
					py := y - (i*6+cx+1)*scale
					c.fill(px, py, px+scale, py+scale, col)
				}
			}
		}
	}
}

func (c *canvas) png() ([]byte, error) {
	var b bytes.Buffer
	if err := png.Encode(&b, c.img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// axis maps data values to pixels along one direction.
type axis struct {
	lo, hi   float64 // data range
	p0, p1   float64 // pixel range (p1 may be below p0 for a y axis)
	log      bool
	ticks    []float64
	tickFmts []string
}

func (a *axis) pos(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return (a.p0 + a.p1) / 2
	}
	return a.p0 + (v-lo)/(hi-lo)*(a.p1-a.p0)
}

// niceTicks picks about n round tick values covering [lo, hi] and widens the range to them.
func niceTicks(lo, hi float64, n int) (float64, float64, []float64) {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	lo = math.Floor(lo/step+1e-9) * step
	hi = math.Ceil(hi/step-1e-9) * step
	var ts []float64
	for v := lo; v <= hi+step/2; v += step {
		ts = append(ts, math.Round(v/step)*step)
	}
	return lo, hi, ts
}

// fmtTick formats a tick value with no more decimals than the step needs.
func fmtTick(v, step float64) string {
	dec := 0
	for s := step; dec < 6 && math.Abs(s-math.Round(s)) > 1e-9; s *= 10 {
		dec++
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// fmtBytes formats a byte count for a log axis.
func fmtBytes(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(strconv.FormatFloat(v/1e6, 'f', 1, 64), ".0") + " MB"
	case v >= 1e3:
		return strings.TrimSuffix(strconv.FormatFloat(v/1e3, 'f', 1, 64), ".0") + " kB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " B"
}

// Series is one line of a LineChart.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool
	// Markers draws a dot at each point; Labels, when set, annotates the points.
	Markers bool
	Labels  []string
	// Color, when set (alpha not 0), replaces the palette colour.
	Color color.RGBA
}

// colorOf returns the colour of series i.
func (s Series) colorOf(i int) color.RGBA {
	if s.Color.A != 0 {
		return s.Color
	}
	return seriesColor(i)
}

// LineChart is a line plot with axes, tick labels, axis labels, a title and a legend.
type LineChart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// XLog makes the x axis logarithmic (for sizes); XBytes formats its ticks as byte counts.
	XLog, XBytes bool
	// YMin/YMax fix the y range when YFixed is set; otherwise it fits the data.
	YFixed     bool
	YMin, YMax float64
	// HLines are horizontal reference lines with labels.
	HLines []RefLine
	Width  int
	Height int
}

// RefLine is a horizontal reference line.
type RefLine struct {
	Y     float64
	Label string
}

const (
	scaleText  = 2
	scaleSmall = 1
)

// frame lays out a plot: the title at the top, a y label on the left, tick labels, and the
// legend on the right; it returns the plot area.
type frame struct {
	c                      *canvas
	left, top, right, bott int // plot area in pixels
}

func newFrame(w, h int, title, xlabel, ylabel string, legendWidth, bottomExtra int) *frame {
	c := newCanvas(w, h)
	f := &frame{c: c}
	f.top = 16 + textHeight(scaleText) + 14
	f.left = 16 + textHeight(scaleText) + 12 + 6*6*scaleText
	f.right = w - 20 - legendWidth
	f.bott = h - 16 - textHeight(scaleText) - 12 - textHeight(scaleText) - bottomExtra
	if xlabel == "" {
		f.bott += textHeight(scaleText) + 8
	}
	c.textAligned(w/2, 14, title, scaleText, textColor, 'c', 't')
	if xlabel != "" {
		c.textAligned((f.left+f.right)/2, h-12, xlabel, scaleText, textColor, 'c', 'b')
	}
	if ylabel != "" {
		c.textUp(14, (f.top+f.bott)/2+textWidth(ylabel, scaleText)/2, ylabel, scaleText, textColor)
	}
	return f
}

// yAxis draws horizontal grid lines and y tick labels.
func (f *frame) yAxis(a *axis) {
	for i, t := range a.ticks {
		y := int(math.Round(a.pos(t)))
		f.c.fill(f.left, y, f.right, y+1, gridGrey)
		f.c.textAligned(f.left-6, y, a.tickFmts[i], scaleText, textColor, 'r', 'm')
	}
}

func (f *frame) box() { f.c.rect(f.left, f.top, f.right+1, f.bott+1, axisGrey) }

// legend draws the entries in a column to the right of the plot area.
func (f *frame) legend(names []string, colors []color.RGBA, dashed []bool) {
	x := f.right + 16
	y := f.top
	for i, n := range names {
		ly := y + textHeight(scaleText)/2
		if dashed != nil && dashed[i] {
			f.c.line(float64(x), float64(ly), float64(x+22), float64(ly), 3, colors[i], 4)
		} else {
			f.c.fill(x, ly-4, x+22, ly+4, colors[i])
		}
		f.c.text(x+28, y, n, scaleText, textColor)
		y += textHeight(scaleText) + 8
	}
}

func legendWidth(names []string) int {
	w := 0
	for _, n := range names {
		w = max(w, textWidth(n, scaleText))
	}
	if w == 0 {
		return 0
	}
	return w + 28 + 24
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// PNG draws the chart.
func (lc *LineChart) PNG() ([]byte, error) {
	if len(lc.Series) == 0 {
		return nil, fmt.Errorf("report: line chart %q has no series", lc.Title)
	}
	w, h := orDefault(lc.Width, 960), orDefault(lc.Height, 560)
	var names []string
	var colors []color.RGBA
	var dashed []bool
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for i, s := range lc.Series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("report: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		names = append(names, s.Name)
		colors = append(colors, s.colorOf(i))
		dashed = append(dashed, s.Dashed)
		for k := range s.X {
			if !finite(s.X[k]) || !finite(s.Y[k]) || (lc.XLog && s.X[k] <= 0) {
				continue
			}
			xlo, xhi = math.Min(xlo, s.X[k]), math.Max(xhi, s.X[k])
			ylo, yhi = math.Min(ylo, s.Y[k]), math.Max(yhi, s.Y[k])
		}
	}
	for _, r := range lc.HLines {
		ylo, yhi = math.Min(ylo, r.Y), math.Max(yhi, r.Y)
	}
	if xlo > xhi {
		return nil, fmt.Errorf("report: line chart %q has no finite points", lc.Title)
	}
	if lc.YFixed {
		ylo, yhi = lc.YMin, lc.YMax
	}
	f := newFrame(w, h, lc.Title, lc.XLabel, lc.YLabel, legendWidth(names), 0)
	ya := &axis{p0: float64(f.bott), p1: float64(f.top)}
	pad := (yhi - ylo) * 0.05
	if pad == 0 {
		pad = 0.01
	}
	var ts []float64
	// Data within [0, 1] (accuracies, fractions) keeps its axis within [0, 1].
	lo, hi := ylo-pad, yhi+pad
	if ylo >= 0 && lo < 0 {
		lo = 0
	}
	if yhi <= 1 && hi > 1 {
		hi = 1
	}
	ya.lo, ya.hi, ts = niceTicks(lo, hi, 6)
	if lc.YFixed {
		ya.lo, ya.hi = lc.YMin, lc.YMax
		_, _, ts = niceTicks(lc.YMin, lc.YMax, 6)
	}
	ya.ticks = ts
	for _, t := range ts {
		ya.tickFmts = append(ya.tickFmts, fmtTick(t, ts[min(1, len(ts)-1)]-ts[0]))
	}
	xa := &axis{p0: float64(f.left + 10), p1: float64(f.right - 10), log: lc.XLog}
	if lc.XLog {
		xa.lo, xa.hi = xlo/1.3, xhi*1.3
		for e := math.Floor(math.Log10(xa.lo)); e <= math.Ceil(math.Log10(xa.hi)); e++ {
			for _, m := range []float64{1, 3} {
				v := m * math.Pow(10, e)
				if v >= xa.lo && v <= xa.hi {
					xa.ticks = append(xa.ticks, v)
					if lc.XBytes {
						xa.tickFmts = append(xa.tickFmts, fmtBytes(v))
					} else {
						xa.tickFmts = append(xa.tickFmts, strconv.FormatFloat(v, 'g', 3, 64))
					}
				}
			}
		}
	} else {
		xa.lo, xa.hi, xa.ticks = niceTicks(xlo, xhi, 8)
		for _, t := range xa.ticks {
			xa.tickFmts = append(xa.tickFmts, fmtTick(t, xa.ticks[min(1, len(xa.ticks)-1)]-xa.ticks[0]))
		}
	}
	f.yAxis(ya)
	for i, t := range xa.ticks {
		x := int(math.Round(xa.pos(t)))
		f.c.fill(x, f.top, x+1, f.bott, gridGrey)
		f.c.textAligned(x, f.bott+6, xa.tickFmts[i], scaleText, textColor, 'c', 't')
	}
	for _, r := range lc.HLines {
		y := ya.pos(r.Y)
		f.c.line(float64(f.left), y, float64(f.right), y, 1, axisGrey, 6)
		f.c.textAligned(f.right-6, int(y)+4, r.Label, scaleText, axisGrey, 'r', 't')
	}
	for i, s := range lc.Series {
		col := s.colorOf(i)
		dash := 0
		if s.Dashed {
			dash = 6
		}
		px, py := math.NaN(), math.NaN()
		for k := range s.X {
			if !finite(s.X[k]) || !finite(s.Y[k]) || (lc.XLog && s.X[k] <= 0) {
				px = math.NaN()
				continue
			}
			x, y := xa.pos(s.X[k]), ya.pos(s.Y[k])
			if !math.IsNaN(px) {
				f.c.line(px, py, x, y, 3, col, dash)
			}
			if s.Markers {
				f.c.fill(int(x)-4, int(y)-4, int(x)+5, int(y)+5, col)
			}
			if k < len(s.Labels) && s.Labels[k] != "" {
				f.c.text(int(x)+6, int(y)-textHeight(scaleSmall)-4, s.Labels[k], scaleSmall+1, col)
			}
			px, py = x, y
		}
	}
	f.box()
	f.legend(names, colors, dashed)
	return f.c.png()
}

// BarChart is a grouped bar chart: one group per category, one bar per series.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Series        []BarSeries
	// YMin/YMax fix the y range when YFixed is set; otherwise it fits the data and zero.
	YFixed     bool
	YMin, YMax float64
	HLines     []RefLine
	Width      int
	Height     int
}

// BarSeries is one bar of every group.
type BarSeries struct {
	Name   string
	Values []float64
}

// PNG draws the chart. Category labels are written upright when they fit and rotated when not.
func (bc *BarChart) PNG() ([]byte, error) {
	if len(bc.Categories) == 0 || len(bc.Series) == 0 {
		return nil, fmt.Errorf("report: bar chart %q has no data", bc.Title)
	}
	w, h := orDefault(bc.Width, 960), orDefault(bc.Height, 560)
	var names []string
	var colors []color.RGBA
	ylo, yhi := 0.0, math.Inf(-1)
	for i, s := range bc.Series {
		if len(s.Values) != len(bc.Categories) {
			return nil, fmt.Errorf("report: bar series %q has %d values for %d categories", s.Name, len(s.Values), len(bc.Categories))
		}
		names = append(names, s.Name)
		colors = append(colors, seriesColor(i))
		for _, v := range s.Values {
			if finite(v) {
				ylo, yhi = math.Min(ylo, v), math.Max(yhi, v)
			}
		}
	}
	if math.IsInf(yhi, -1) {
		yhi = 1
	}
	if bc.YFixed {
		ylo, yhi = bc.YMin, bc.YMax
	}
	lw := 0
	if len(bc.Series) > 1 {
		lw = legendWidth(names)
	}
	longest := 0
	for _, c := range bc.Categories {
		longest = max(longest, textWidth(c, scaleText))
	}
	plotW := w - 20 - lw - (16 + textHeight(scaleText) + 12 + 6*6*scaleText)
	groupW := float64(plotW) / float64(len(bc.Categories))
	rotate := float64(longest) > groupW-6
	extra := 0
	if rotate {
		extra = longest - textHeight(scaleText) + 24
	}
	f := newFrame(w, h, bc.Title, "", bc.YLabel, lw, extra)
	ya := &axis{p0: float64(f.bott), p1: float64(f.top)}
	var ts []float64
	ya.lo, ya.hi, ts = niceTicks(ylo, yhi, 6)
	if bc.YFixed {
		ya.lo, ya.hi = bc.YMin, bc.YMax
	}
	ya.ticks = ts
	for _, t := range ts {
		ya.tickFmts = append(ya.tickFmts, fmtTick(t, ts[min(1, len(ts)-1)]-ts[0]))
	}
	f.yAxis(ya)
	groupW = float64(f.right-f.left) / float64(len(bc.Categories))
	barW := groupW * 0.8 / float64(len(bc.Series))
	zero := ya.pos(math.Max(ya.lo, math.Min(0, ya.hi)))
	for g, cat := range bc.Categories {
		x0 := float64(f.left) + float64(g)*groupW + groupW*0.1
		for i, s := range bc.Series {
			v := s.Values[g]
			if !finite(v) {
				continue
			}
			v = math.Max(ya.lo, math.Min(ya.hi, v))
			bx := x0 + float64(i)*barW
			f.c.fill(int(bx), int(math.Round(ya.pos(v))), int(bx+barW)-1, int(zero), colors[i])
		}
		cx := int(float64(f.left) + (float64(g)+0.5)*groupW)
		if rotate {
			f.c.textUp(cx-textHeight(scaleText)/2, f.bott+6+textWidth(cat, scaleText), cat, scaleText, textColor)
		} else {
			f.c.textAligned(cx, f.bott+6, cat, scaleText, textColor, 'c', 't')
		}
	}
	for _, r := range bc.HLines {
		y := ya.pos(r.Y)
		f.c.line(float64(f.left), y, float64(f.right), y, 2, black, 6)
		f.c.textAligned(f.right-4, int(y)-3, r.Label, scaleText, black, 'r', 'b')
	}
	f.box()
	if len(bc.Series) > 1 {
		f.legend(names, colors, nil)
	}
	return f.c.png()
}

// Heatmap is a matrix of values drawn as coloured cells with row and column labels, the values
// written in the cells, and a colour bar.
type Heatmap struct {
	Title      string
	Rows, Cols []string
	Values     [][]float64
	// Min and Max are the ends of the colour scale; Diverging uses blue–white–red around the
	// middle, otherwise white to dark blue.
	Min, Max  float64
	Diverging bool
	// Digits is the number of decimals written in the cells.
	Digits int
	Width  int
}

// colormap returns the colour of t in [0, 1].
func colormap(t float64, diverging bool) color.RGBA {
	t = math.Max(0, math.Min(1, t))
	var stops []color.RGBA
	if diverging {
		stops = []color.RGBA{{33, 102, 172, 255}, {146, 197, 222, 255}, {247, 247, 247, 255}, {244, 165, 130, 255}, {178, 24, 43, 255}}
	} else {
		stops = []color.RGBA{{247, 251, 255, 255}, {198, 219, 239, 255}, {107, 174, 214, 255}, {33, 113, 181, 255}, {8, 48, 107, 255}}
	}
	p := t * float64(len(stops)-1)
	i := min(int(p), len(stops)-2)
	u := p - float64(i)
	a, b := stops[i], stops[i+1]
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + u*(float64(y)-float64(x)))) }
	return color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255}
}

// PNG draws the heatmap.
func (hm *Heatmap) PNG() ([]byte, error) {
	if len(hm.Rows) == 0 || len(hm.Cols) == 0 || len(hm.Values) != len(hm.Rows) {
		return nil, fmt.Errorf("report: heatmap %q: %d rows of values for %d row labels", hm.Title, len(hm.Values), len(hm.Rows))
	}
	for i, row := range hm.Values {
		if len(row) != len(hm.Cols) {
			return nil, fmt.Errorf("report: heatmap %q: row %d has %d values for %d columns", hm.Title, i, len(row), len(hm.Cols))
		}
	}
	rowW, colH := 0, 0
	for _, r := range hm.Rows {
		rowW = max(rowW, textWidth(r, scaleText))
	}
	for _, c := range hm.Cols {
		colH = max(colH, textWidth(c, scaleText))
	}
	w := orDefault(hm.Width, 960)
	barW := 110
	left := 16 + rowW + 8
	cell := (w - left - barW - 20) / len(hm.Cols)
	cell = min(cell, 90)
	w = max(left+cell*len(hm.Cols)+barW+20, textWidth(hm.Title, scaleText)+40)
	top := 16 + textHeight(scaleText) + 14
	gridH := cell * len(hm.Rows)
	h := top + gridH + 8 + colH + 16
	c := newCanvas(w, h)
	c.textAligned(w/2, 14, hm.Title, scaleText, textColor, 'c', 't')
	digits := hm.Digits
	cellScale := scaleText
	if textWidth(strconv.FormatFloat(-0.99, 'f', digits, 64), scaleText) > cell-4 {
		cellScale = scaleSmall
	}
	span := hm.Max - hm.Min
	if span == 0 {
		span = 1
	}
	for i, row := range hm.Values {
		y := top + i*cell
		c.textAligned(left-8, y+cell/2, hm.Rows[i], scaleText, textColor, 'r', 'm')
		for j, v := range row {
			x := left + j*cell
			if !finite(v) {
				c.fill(x, y, x+cell, y+cell, gridGrey)
				continue
			}
			t := (v - hm.Min) / span
			col := colormap(t, hm.Diverging)
			c.fill(x, y, x+cell, y+cell, col)
			lum := 0.299*float64(col.R) + 0.587*float64(col.G) + 0.114*float64(col.B)
			tc := black
			if lum < 120 {
				tc = white
			}
			if cell >= textWidth("0.0", cellScale)+2 {
				c.textAligned(x+cell/2, y+cell/2, strconv.FormatFloat(v, 'f', digits, 64), cellScale, tc, 'c', 'm')
			}
		}
	}
	for j, name := range hm.Cols {
		x := left + j*cell + cell/2 - textHeight(scaleText)/2
		c.textUp(x, top+gridH+8+textWidth(name, scaleText), name, scaleText, textColor)
	}
	c.rect(left, top, left+cell*len(hm.Cols)+1, top+gridH+1, axisGrey)
	// Colour bar.
	bx := left + cell*len(hm.Cols) + 20
	for y := 0; y < gridH; y++ {
		c.fill(bx, top+y, bx+20, top+y+1, colormap(1-float64(y)/float64(max(1, gridH-1)), hm.Diverging))
	}
	c.rect(bx, top, bx+20, top+gridH, axisGrey)
	fmtv := func(v float64) string { return strconv.FormatFloat(v, 'f', max(1, digits-1), 64) }
	c.text(bx+26, top, fmtv(hm.Max), scaleText, textColor)
	c.textAligned(bx+26, top+gridH, fmtv(hm.Min), scaleText, textColor, 'l', 'b')
	return c.png()
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}
