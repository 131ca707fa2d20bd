package descriptor

import "regexp"

// idChars is the charset of node, operator, input and output ids. `/` is
// excluded because it separates the parts of an input source.
const (
	idChars   = `A-Za-z0-9_.-`
	idPattern = `^[` + idChars + `]+$`
)

var idRe = regexp.MustCompile(idPattern)

// reservedNodeID prefixes built-in sources (dora/timer/...); a node with
// this id could never be referred to.
const reservedNodeID = "dora"

// checkID reports an id that is empty or uses characters outside idPattern.
func (p *parser) checkID(line int, at loc, what, id string) bool {
	switch {
	case id == "":
		p.addf(line, at, "%s must not be empty", what)
	case !idRe.MatchString(id):
		p.addf(line, at, `%s %q may only contain letters, digits, "_", "." and "-"`, what, id)
	default:
		return true
	}
	return false
}
