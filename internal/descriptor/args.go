package descriptor

import (
	"errors"
	"strings"

	"gopkg.in/yaml.v3"
)

// args reads `args:` as a string split like a shell would, or as a list of
// scalars taken as written.
func (p *parser) args(at loc, v *yaml.Node) []string {
	v = p.deref(v)
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		words, err := splitShell(v.Value)
		if err != nil {
			p.addf(v.Line, at, "args: %v", err)
		}
		return words
	case v.Kind == yaml.SequenceNode:
		var out []string
		for _, item := range v.Content {
			if s, ok := p.scalar(at, "each of args", item); ok {
				out = append(out, s)
			}
		}
		return out
	}
	p.addf(v.Line, at, "args must be a string or a sequence, got %s", describe(v))
	return nil
}

// splitShell splits s into words the way a POSIX shell does, without any
// expansion ($VAR, *, ~ and # stay as they are): blanks separate words,
// single quotes keep everything literal, double quotes keep everything but
// \$ \` \" \\ and line continuations, and a backslash outside quotes keeps
// the next character.
func splitShell(s string) ([]string, error) {
	var (
		words []string
		word  strings.Builder
		// inWord is true once a word has begun, so `""` yields an empty word.
		inWord bool
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case ' ', '\t', '\n', '\r':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case '\\':
			i++
			if i == len(rs) {
				return nil, errors.New("ends with a lone backslash")
			}
			if rs[i] != '\n' {
				word.WriteRune(rs[i])
				inWord = true
			}
		case '\'':
			end := indexRune(rs, i+1, '\'')
			if end < 0 {
				return nil, errors.New("a single quote is not closed")
			}
			word.WriteString(string(rs[i+1 : end]))
			inWord, i = true, end
		case '"':
			inWord = true
			closed := false
			for i++; i < len(rs); i++ {
				if rs[i] == '"' {
					closed = true
					break
				}
				if rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune("$`\"\\\n", rs[i+1]) {
					i++
					if rs[i] == '\n' {
						continue
					}
				}
				word.WriteRune(rs[i])
			}
			if !closed {
				return nil, errors.New("a double quote is not closed")
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

func indexRune(rs []rune, from int, r rune) int {
	for i := from; i < len(rs); i++ {
		if rs[i] == r {
			return i
		}
	}
	return -1
}
