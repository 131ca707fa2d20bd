package descriptor

import (
	"fmt"
	"strings"
)

// didYouMean returns ` (did you mean "x"?)` for the candidate closest to
// got, or "" when none is close enough to be a plausible typo.
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// suggest picks the candidate with the smallest edit distance to got.
// Case and the `_`/`-` spelling are ignored because both are common slips
// between the seed and current dora formats (working_dir, working-directory).
func suggest(got string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	g := norm(got)
	limit := max(1, min(3, len([]rune(g))/3))
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == got {
			continue
		}
		if d := editDistance(g, norm(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" || len(g) < 3 {
		return best
	}
	// A cut-off word ("queue" for "queue_size") is far in edits but
	// obvious to a reader.
	for _, c := range candidates {
		if strings.HasPrefix(norm(c), g) {
			return c
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance: Levenshtein plus
// transpositions of neighbours, the most common typo ("imgae").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows are enough: transpositions look back two rows.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
