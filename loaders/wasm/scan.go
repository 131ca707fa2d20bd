package wasm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	wasmabi "github.com/dora-go/dora/abi/wasm"
	"github.com/dora-go/dora/runtime"
)

// Compiling a Go guest takes seconds, so the exports and imports a module
// declares are checked first, straight from its binary: a module that
// cannot work is refused at once, naming everything it lacks.

// Wasm external kinds.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
	kindTag    = 4
)

type importEntry struct {
	module, name string
	kind         byte
}

// moduleSurface is what a module declares it exports and imports.
type moduleSurface struct {
	exports map[string]byte // name -> kind
	imports []importEntry
}

var errScan = errors.New("malformed module")

type scanner struct {
	b []byte
}

func (s *scanner) byte() (byte, error) {
	if len(s.b) == 0 {
		return 0, errScan
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c, nil
}

func (s *scanner) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := s.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errScan
}

func (s *scanner) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(s.b)) {
		return nil, errScan
	}
	v := s.b[:n]
	s.b = s.b[n:]
	return v, nil
}

func (s *scanner) name() (string, error) {
	n, err := s.u32()
	if err != nil {
		return "", err
	}
	b, err := s.bytes(n)
	return string(b), err
}

func (s *scanner) limits() error {
	flags, err := s.byte()
	if err != nil {
		return err
	}
	if _, err := s.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = s.u32()
	}
	return err
}

// scanModule reads the export and import sections of a module whose
// header checkHeader accepted.
func scanModule(bin []byte) (*moduleSurface, error) {
	s := &scanner{b: bin[8:]}
	m := &moduleSurface{exports: map[string]byte{}}
	for len(s.b) > 0 {
		id, err := s.byte()
		if err != nil {
			return nil, err
		}
		size, err := s.u32()
		if err != nil {
			return nil, err
		}
		body, err := s.bytes(size)
		if err != nil {
			return nil, err
		}
		sec := &scanner{b: body}
		switch id {
		case 2:
			if err := m.scanImports(sec); err != nil {
				return nil, err
			}
		case 7:
			n, err := sec.u32()
			if err != nil {
				return nil, err
			}
			for i := uint32(0); i < n; i++ {
				name, err := sec.name()
				if err != nil {
					return nil, err
				}
				kind, err := sec.byte()
				if err != nil {
					return nil, err
				}
				if _, err := sec.u32(); err != nil {
					return nil, err
				}
				m.exports[name] = kind
			}
		}
	}
	return m, nil
}

func (m *moduleSurface) scanImports(s *scanner) error {
	n, err := s.u32()
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		var e importEntry
		if e.module, err = s.name(); err != nil {
			return err
		}
		if e.name, err = s.name(); err != nil {
			return err
		}
		if e.kind, err = s.byte(); err != nil {
			return err
		}
		switch e.kind {
		case kindFunc:
			_, err = s.u32()
		case kindTable:
			if _, err = s.byte(); err == nil {
				err = s.limits()
			}
		case kindMemory:
			err = s.limits()
		case kindGlobal:
			_, err = s.bytes(2)
		case kindTag:
			if _, err = s.byte(); err == nil {
				_, err = s.u32()
			}
		default:
			err = errScan
		}
		if err != nil {
			return err
		}
		m.imports = append(m.imports, e)
	}
	return nil
}

// check names every problem of the module's surface at once: a WASI
// command instead of a reactor, missing exports, imports the host does
// not provide.
func (m *moduleSurface) check(path string) error {
	if kind, ok := m.exports["_start"]; ok && kind == kindFunc {
		if _, ok := m.exports[wasmabi.ExportInitializeWASI]; !ok {
			return fmt.Errorf("%s is a WASI command (it exports _start), not a reactor: build Go guests with -buildmode=c-shared, C guests with -mexec-model=reactor", path)
		}
	}
	var missing []string
	for _, e := range abiExports {
		if kind, ok := m.exports[e.name]; e.required && (!ok || kind != kindFunc) {
			missing = append(missing, e.name)
		}
	}
	if kind, ok := m.exports[wasmabi.ExportMemory]; !ok || kind != kindMemory {
		missing = append(missing, "memory "+wasmabi.ExportMemory)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s does not export %s", runtime.ErrMissingSymbol, path, strings.Join(missing, ", "))
	}
	var bad []string
	for _, e := range m.imports {
		switch {
		case e.kind == kindFunc && e.module == wasi_snapshot_preview1.ModuleName:
		case e.kind == kindFunc && e.module == wasmabi.ImportModule && hostFunctions[e.name]:
		default:
			what := e.module + "." + e.name
			if e.kind != kindFunc {
				what = [...]string{"", "table ", "memory ", "global ", "tag "}[min(int(e.kind), 4)] + what
			}
			bad = append(bad, what)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s imports %s, which the dora host does not provide (it provides functions %s.* and %s.*)",
			runtime.ErrMissingSymbol, path, strings.Join(bad, ", "), wasmabi.ImportModule, wasi_snapshot_preview1.ModuleName)
	}
	return nil
}

// checkSignatures checks the types of the ABI exports once compiled.
func checkSignatures(path string, c wazero.CompiledModule) error {
	exports := c.ExportedFunctions()
	var wrong []string
	for _, e := range abiExports {
		def, ok := exports[e.name]
		if !ok {
			continue
		}
		if !sameTypes(def.ParamTypes(), e.params) || !sameTypes(def.ResultTypes(), e.results) {
			wrong = append(wrong, fmt.Sprintf("%s is %s, want %s", e.name, sig(def.ParamTypes(), def.ResultTypes()), sig(e.params, e.results)))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%s does not follow the dora wasm ABI (abi/wasm/ABI.md): %s", path, strings.Join(wrong, "; "))
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool { return string(a) == string(b) }

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return names(params) + " -> " + names(results)
}
