package config

import (
	"strings"
	"unicode/utf8"
)

// suggest returns the candidate the user most likely meant by typed, or "" when
// none is close: first a case-insensitive match, then the nearest candidate
// within edit distance 2, then a candidate containing typed (or contained in
// it) when typed has at least 3 characters. Ties go to the earlier candidate.
func suggest(typed string, candidates []string) string {
	lower := strings.ToLower(typed)
	for _, c := range candidates {
		if strings.ToLower(c) == lower {
			return c
		}
	}
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein(lower, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	if utf8.RuneCountInString(typed) < 3 {
		return ""
	}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if strings.Contains(lc, lower) || (utf8.RuneCountInString(c) >= 3 && strings.Contains(lower, lc)) {
			return c
		}
	}
	return ""
}

// levenshtein returns the number of single-rune insertions, deletions and
// substitutions that turn a into b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
