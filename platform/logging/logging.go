// Package logging builds Engram's slog logger: a console handler (colourful
// tint text on a terminal, or JSON) and, when a directory is given, two
// rotating JSON files: engram.log with every record logged and error.log
// with errors only.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lmittmann/tint"
	"github.com/mattn/go-isatty"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Console and file formats.
const (
	// FormatText is human-readable text (tint), coloured on a terminal.
	FormatText = "text"
	// FormatJSON is one JSON object per line.
	FormatJSON = "json"
)

// Names of the files written under Options.Dir.
const (
	// AllFile receives every record at or above Options.Level.
	AllFile = "engram.log"
	// ErrorFile receives ERROR records and above only.
	ErrorFile = "error.log"
)

// Rotation settings of the files under Options.Dir.
const (
	maxSizeMB  = 50
	maxBackups = 7
	maxAgeDays = 28
)

// Options configure New.
type Options struct {
	// Level is the lowest level logged (default info). A *slog.LevelVar
	// changes it at run time.
	Level slog.Leveler
	// Format is the console format, FormatText (default) or FormatJSON.
	Format string
	// Dir, when not empty, is created and receives the rotating AllFile and
	// ErrorFile, always in JSON.
	Dir string
	// Console receives the console output (default os.Stderr).
	Console io.Writer
}

// New builds a logger from o. Close the returned io.Closer at exit to
// close the log files (it is a no-op when there are none).
func New(o Options) (*slog.Logger, io.Closer, error) {
	level := o.Level
	if level == nil {
		level = slog.LevelInfo
	}
	console := o.Console
	if console == nil {
		console = os.Stderr
	}

	var handlers []slog.Handler
	switch strings.ToLower(o.Format) {
	case "", FormatText:
		handlers = append(handlers, tint.NewTextHandler(console, &tint.Options{
			Level:      level,
			TimeFormat: "15:04:05.000",
			NoColor:    !isTerminal(console),
		}))
	case FormatJSON:
		handlers = append(handlers, slog.NewJSONHandler(console, &slog.HandlerOptions{Level: level}))
	default:
		return nil, nil, fmt.Errorf("log format %q: want %s or %s", o.Format, FormatText, FormatJSON)
	}

	var files closers
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("create log directory: %w", err)
		}
		all, err := openRotating(filepath.Join(o.Dir, AllFile))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, all)
		errs, err := openRotating(filepath.Join(o.Dir, ErrorFile))
		if err != nil {
			_ = files.Close()
			return nil, nil, err
		}
		files = append(files, errs)
		handlers = append(handlers,
			slog.NewJSONHandler(all, &slog.HandlerOptions{Level: level}),
			slog.NewJSONHandler(errs, &slog.HandlerOptions{Level: atLeast{level, slog.LevelError}}),
		)
	}

	if len(handlers) == 1 {
		return slog.New(handlers[0]), files, nil
	}
	return slog.New(slog.NewMultiHandler(handlers...)), files, nil
}

// ParseLevel parses debug, info, warn or error, in any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// Discard returns a logger that writes nothing, for tests and for
// components built without a logger.
func Discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// openRotating opens a rotating file, creating it at once so that a
// directory that cannot be written is reported at start.
func openRotating(path string) (*lumberjack.Logger, error) {
	l := &lumberjack.Logger{
		Filename:   path,
		MaxSize:    maxSizeMB,
		MaxBackups: maxBackups,
		MaxAge:     maxAgeDays,
		Compress:   true,
	}
	if _, err := l.Write(nil); err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return l, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// atLeast is the higher of a (possibly changing) level and a floor.
type atLeast struct {
	level slog.Leveler
	floor slog.Level
}

func (a atLeast) Level() slog.Level { return max(a.level.Level(), a.floor) }

// closers closes every file, reporting every failure.
type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for _, f := range c {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
