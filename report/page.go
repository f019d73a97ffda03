package report

import (
	"encoding/base64"
	"fmt"
	"html"
	"regexp"
	"strings"
)

// page is a document as a list of blocks, rendered to Markdown and to HTML.
type page struct {
	blocks []block
	plots  map[string][]byte // file name under plots/ → PNG
}

type blockKind int

const (
	bHeading blockKind = iota
	bPara
	bTable
	bImage
	bList
	bCode
)

type block struct {
	kind   blockKind
	level  int
	text   string
	header []string
	rows   [][]string
	items  []string
	image  string // plot file name
}

func (p *page) h(level int, text string) {
	p.blocks = append(p.blocks, block{kind: bHeading, level: level, text: text})
}

func (p *page) para(format string, args ...any) {
	p.blocks = append(p.blocks, block{kind: bPara, text: fmt.Sprintf(format, args...)})
}

func (p *page) table(header []string, rows [][]string) {
	p.blocks = append(p.blocks, block{kind: bTable, header: header, rows: rows})
}

func (p *page) list(items ...string) { p.blocks = append(p.blocks, block{kind: bList, items: items}) }

func (p *page) code(text string) { p.blocks = append(p.blocks, block{kind: bCode, text: text}) }

// plot adds a plot drawn by draw under name; a plot that fails to draw is replaced by a note.
func (p *page) plot(name, caption string, draw func() ([]byte, error)) {
	b, err := draw()
	if err != nil {
		p.para("(plot %s could not be drawn: %v)", name, err)
		return
	}
	p.plots[name] = b
	p.blocks = append(p.blocks, block{kind: bImage, image: name, text: caption})
}

func mdEscapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// markdown renders the page; plots are linked as plots/NAME.
func (p *page) markdown() string {
	var b strings.Builder
	for _, bl := range p.blocks {
		switch bl.kind {
		case bHeading:
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", bl.level), bl.text)
		case bPara:
			fmt.Fprintf(&b, "%s\n\n", bl.text)
		case bTable:
			b.WriteString("|")
			for _, h := range bl.header {
				fmt.Fprintf(&b, " %s |", mdEscapeCell(h))
			}
			b.WriteString("\n|")
			for range bl.header {
				b.WriteString("---|")
			}
			b.WriteString("\n")
			for _, r := range bl.rows {
				b.WriteString("|")
				for _, c := range r {
					fmt.Fprintf(&b, " %s |", mdEscapeCell(c))
				}
				b.WriteString("\n")
			}
			b.WriteString("\n")
		case bImage:
			fmt.Fprintf(&b, "![%s](plots/%s)\n\n", bl.text, bl.image)
		case bList:
			for _, it := range bl.items {
				fmt.Fprintf(&b, "- %s\n", it)
			}
			b.WriteString("\n")
		case bCode:
			fmt.Fprintf(&b, "```\n%s\n```\n\n", strings.TrimRight(bl.text, "\n"))
		}
	}
	return b.String()
}

var (
	reBold = regexp.MustCompile(`\*\*(.+?)\*\*`)
	reCode = regexp.MustCompile("`([^`]+)`")
)

// inline converts the Markdown subset used in the page's text (bold, code) to HTML.
func inline(s string) string {
	s = html.EscapeString(s)
	s = reBold.ReplaceAllString(s, "<strong>$1</strong>")
	s = reCode.ReplaceAllString(s, "<code>$1</code>")
	return s
}

const css = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}code{background:#f3f3f3;padding:0 .2em}
.met{color:#1a7f37;font-weight:600}.unmet{color:#b42318;font-weight:600}`

func numeric(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	c := s[0]
	return c == '-' || c == '+' || (c >= '0' && c <= '9')
}

// html renders the page as one self-contained HTML document: plots are embedded as data URIs.
func (p *page) html(title string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", html.EscapeString(title), css)
	for _, bl := range p.blocks {
		switch bl.kind {
		case bHeading:
			fmt.Fprintf(&b, "<h%d>%s</h%d>\n", bl.level, inline(bl.text), bl.level)
		case bPara:
			fmt.Fprintf(&b, "<p>%s</p>\n", inline(bl.text))
		case bTable:
			b.WriteString("<table>\n<tr>")
			for _, h := range bl.header {
				fmt.Fprintf(&b, "<th>%s</th>", inline(h))
			}
			b.WriteString("</tr>\n")
			for _, r := range bl.rows {
				b.WriteString("<tr>")
				for _, c := range r {
					cls := ""
					switch {
					case c == "yes":
						cls = ` class="met"`
					case c == "**no**":
						cls = ` class="unmet"`
					case numeric(c):
						cls = ` class="num"`
					}
					fmt.Fprintf(&b, "<td%s>%s</td>", cls, inline(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</table>\n")
		case bImage:
			fmt.Fprintf(&b, "<figure><img alt=\"%s\" src=\"data:image/png;base64,%s\"><figcaption>%s</figcaption></figure>\n",
				html.EscapeString(bl.text), base64.StdEncoding.EncodeToString(p.plots[bl.image]), inline(bl.text))
		case bList:
			b.WriteString("<ul>\n")
			for _, it := range bl.items {
				fmt.Fprintf(&b, "<li>%s</li>\n", inline(it))
			}
			b.WriteString("</ul>\n")
		case bCode:
			fmt.Fprintf(&b, "<pre>%s</pre>\n", html.EscapeString(bl.text))
		}
	}
	b.WriteString("</body>\n</html>\n")
	return b.String()
}
