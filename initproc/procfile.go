package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// DefaultAppDir is the app's tree inside the container, holding its Procfile.
const DefaultAppDir = "/srv/app"

// ParseProcfile reads Procfile lines of the form `type: command`. Blank lines
// and lines starting with # are skipped; a later line for the same type wins,
// as with foreman.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	procs := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, command, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		command = strings.TrimSpace(command)
		if !ok || !validProcessType(name) || command == "" {
			return nil, fmt.Errorf("procfile line %d: want \"type: command\", got %q", n, line)
		}
		procs[name] = command
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read procfile: %w", err)
	}
	return procs, nil
}

func validProcessType(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')) {
			return false
		}
	}
	return true
}

// SplitCommand splits a Procfile command into argv for images without a
// shell: whitespace separates words, single and double quotes group them and
// a backslash escapes the next character. Nothing else of shell syntax is
// understood.
func SplitCommand(s string) ([]string, error) {
	var (
		args    []string
		word    strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			word.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case unicode.IsSpace(r):
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", s)
	}
	if inWord {
		args = append(args, word.String())
	}
	return args, nil
}

// errNothingToRun says neither the Procfile nor the image names a command.
var errNothingToRun = errors.New("nothing to run")

// resolveCommand picks what init runs: the Procfile line of processType when
// there is one, else fallback.
func resolveCommand(procfile, processType, shell string, fallback []string) ([]string, error) {
	f, err := os.Open(procfile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		defer f.Close()
		procs, err := ParseProcfile(f)
		if err != nil {
			return nil, err
		}
		if line, ok := procs[processType]; ok {
			if _, err := os.Stat(shell); err == nil {
				return []string{shell, "-c", line}, nil
			}
			return SplitCommand(line)
		}
	}
	if len(fallback) == 0 {
		return nil, fmt.Errorf("no %q line in %s and no default command: %w", processType, procfile, errNothingToRun)
	}
	return fallback, nil
}
