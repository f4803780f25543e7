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
	"time"

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
	// FlushEvery, when positive, holds the output of the console and the
	// files and writes it at most that long after a record is logged: one
	// write for many records. Warnings and errors are written at once, and
	// Close writes what is held. 0 writes every record as it is logged.
	FlushEvery time.Duration
}

// New builds a logger from o. Close the returned io.Closer at exit: it
// writes what is held (see Options.FlushEvery) and closes the log files.
func New(o Options) (*slog.Logger, io.Closer, error) {
	level := o.Level
	if level == nil {
		level = slog.LevelInfo
	}
	console := o.Console
	if console == nil {
		console = os.Stderr
	}
	format := strings.ToLower(o.Format)
	if format != "" && format != FormatText && format != FormatJSON {
		return nil, nil, fmt.Errorf("log format %q: want %s or %s", o.Format, FormatText, FormatJSON)
	}
	var all, errs *lumberjack.Logger
	var files closers
	if o.Dir != "" {
		var err error
		if all, errs, err = openFiles(o.Dir); err != nil {
			return nil, nil, err
		}
		files = closers{all, errs}
	}

	var held []*buffered // closed before the files, so that what they hold is written
	hold := func(w io.Writer) io.Writer {
		if o.FlushEvery <= 0 {
			return w
		}
		b := newBuffered(w, o.FlushEvery)
		held = append(held, b)
		return b
	}
	var handlers []slog.Handler
	if format == FormatJSON {
		handlers = append(handlers, slog.NewJSONHandler(hold(console), &slog.HandlerOptions{Level: level}))
	} else {
		handlers = append(handlers, tint.NewTextHandler(hold(console), &tint.Options{
			Level:      level,
			TimeFormat: "15:04:05.000",
			NoColor:    !isTerminal(console),
		}))
	}
	if all != nil {
		handlers = append(handlers,
			slog.NewJSONHandler(hold(all), &slog.HandlerOptions{Level: level}),
			slog.NewJSONHandler(hold(errs), &slog.HandlerOptions{Level: atLeast{level, slog.LevelError}}),
		)
	}

	h := handlers[0]
	if len(handlers) > 1 {
		h = slog.NewMultiHandler(handlers...)
	}
	if len(held) == 0 {
		return slog.New(h), files, nil
	}
	h = flushing{h, func() {
		for _, b := range held {
			_ = b.Flush()
		}
	}}
	closeAll := make(closers, 0, len(held)+len(files))
	for _, b := range held {
		closeAll = append(closeAll, b)
	}
	return slog.New(h), append(closeAll, files...), nil
}

// openFiles opens the rotating AllFile and ErrorFile under dir, creating it.
func openFiles(dir string) (all, errs *lumberjack.Logger, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	if all, err = openRotating(filepath.Join(dir, AllFile)); err != nil {
		return nil, nil, err
	}
	if errs, err = openRotating(filepath.Join(dir, ErrorFile)); err != nil {
		_ = all.Close()
		return nil, nil, err
	}
	return all, errs, nil
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
