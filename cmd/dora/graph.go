package main

import (
	"fmt"
	"html"
	"os"
	"strings"

	"github.com/dora-go/dora/internal/descriptor"
	"github.com/spf13/cobra"
)

func newGraphCmd() *cobra.Command {
	var htmlFile string
	cmd := &cobra.Command{
		Use:   "graph DATAFLOW",
		Short: "Draw a dataflow as a Mermaid flowchart or an HTML page",
		Long: `Print the dataflow as a Mermaid flowchart (paste it into any Mermaid viewer),
or with --html write a self-contained page that draws the graph as SVG and
opens offline in any browser.`,
		Example: "  dora graph dataflow.yml\n  dora graph dataflow.yml --html graph.html",
		Args:    cobra.ExactArgs(1),
		GroupID: groupDataflow,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := load(cmd, args[0])
			if err != nil {
				return err
			}
			if htmlFile == "" {
				_, err := fmt.Fprint(cmd.OutOrStdout(), d.Mermaid())
				return err
			}
			if err := os.WriteFile(htmlFile, []byte(graphPage(d)), 0o644); err != nil {
				return fmt.Errorf("writing the graph: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", htmlFile)
			return nil
		},
	}
	cmd.Flags().StringVar(&htmlFile, "html", "", "write a self-contained HTML page with the graph to `FILE`")
	return cmd
}

// graphPage is an HTML page with the graph as inline SVG and the Mermaid
// source, with no scripts and no links: robots are often offline.
func graphPage(d *descriptor.Dataflow) string {
	var b strings.Builder
	title := html.EscapeString(d.File)
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%s · dora graph</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.2rem; font-weight: 600; }
.graph { overflow: auto; border: 1px solid #d9e2ec; border-radius: 6px; padding: 1rem; background: #fff; }
summary { cursor: pointer; margin-top: 1rem; }
pre { background: #f5f7fa; padding: 1rem; border-radius: 6px; overflow: auto; }
</style>
</head>
<body>
<h1>%s</h1>
<p>%s. Hover a box for details.</p>
<div class="graph">
`, title, title, html.EscapeString(summary(d)))
	b.WriteString(renderSVG(layoutGraph(graphOf(d))))
	fmt.Fprintf(&b, `</div>
<details>
<summary>Mermaid source</summary>
<pre>%s</pre>
</details>
</body>
</html>
`, html.EscapeString(d.Mermaid()))
	return b.String()
}
