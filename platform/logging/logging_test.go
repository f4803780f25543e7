package logging_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/logging"
)

func TestConsoleText(t *testing.T) {
	var out bytes.Buffer
	logger, closer, err := logging.New(logging.Options{Level: slog.LevelInfo, Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()

	logger.Debug("hidden debug")
	logger.Info("hello", "user_id", "u1")
	got := out.String()
	if strings.Contains(got, "hidden debug") {
		t.Errorf("debug record logged at info level: %q", got)
	}
	if !strings.Contains(got, "hello") || !strings.Contains(got, "user_id=u1") {
		t.Errorf("info record missing: %q", got)
	}
	if strings.Contains(got, "\x1b[") {
		t.Errorf("colour codes written to a non-terminal: %q", got)
	}
}

func TestConsoleJSON(t *testing.T) {
	var out bytes.Buffer
	logger, closer, err := logging.New(logging.Options{Level: slog.LevelWarn, Format: "json", Console: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()

	logger.Info("hidden info")
	logger.Warn("careful", "n", 3)
	records := parseLines(t, out.Bytes())
	if len(records) != 1 || records[0]["msg"] != "careful" || records[0]["level"] != "WARN" || records[0]["n"] != 3.0 {
		t.Errorf("records = %v, want the one WARN record", records)
	}
}

func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "logs")
	var console bytes.Buffer
	level := new(slog.LevelVar) // info
	logger, closer, err := logging.New(logging.Options{Level: level, Dir: dir, Console: &console})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{logging.AllFile, logging.ErrorFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s not created by New: %v", name, err)
		}
	}

	logger.Debug("debug one")
	logger.Info("info one")
	logger.With("request_id", "r1").WithGroup("http").Error("error one", "status", 500)
	logger.Warn("warn one")
	level.Set(slog.LevelDebug)
	logger.Debug("debug two")
	if err := closer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	all := parseLines(t, readFile(t, filepath.Join(dir, logging.AllFile)))
	if got, want := messages(all), "info one,error one,warn one,debug two"; got != want {
		t.Errorf("%s has %q, want %q", logging.AllFile, got, want)
	}
	errs := parseLines(t, readFile(t, filepath.Join(dir, logging.ErrorFile)))
	if got, want := messages(errs), "error one"; got != want {
		t.Errorf("%s has %q, want %q", logging.ErrorFile, got, want)
	}
	if len(errs) == 1 {
		http, _ := errs[0]["http"].(map[string]any)
		if errs[0]["request_id"] != "r1" || http["status"] != 500.0 {
			t.Errorf("attributes and groups lost in %s: %v", logging.ErrorFile, errs[0])
		}
	}
	if c := console.String(); !strings.Contains(c, "info one") || !strings.Contains(c, "debug two") || strings.Contains(c, "debug one") {
		t.Errorf("console output does not follow the level: %q", c)
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	if _, _, err := logging.New(logging.Options{Format: "xml", Console: &bytes.Buffer{}}); err == nil {
		t.Error("New accepted format xml")
	}
}

func TestNewReportsUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := logging.New(logging.Options{Dir: filepath.Join(file, "logs"), Console: &bytes.Buffer{}}); err == nil {
		t.Error("New accepted a directory below a regular file")
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{" warn ", slog.LevelWarn, false},
		{"Error", slog.LevelError, false},
		{"warning", 0, true},
		{"info+2", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := logging.ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var records []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		records = append(records, r)
	}
	return records
}

func messages(records []map[string]any) string {
	var msgs []string
	for _, r := range records {
		msgs = append(msgs, r["msg"].(string))
	}
	return strings.Join(msgs, ",")
}

// lockedBuffer is a bytes.Buffer written by the flushing goroutine and read
// by the test.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) read() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestFlushEvery(t *testing.T) {
	t.Run("HoldsInfoWritesItInOneGo", func(t *testing.T) {
		var out lockedBuffer
		logger, closer, err := logging.New(logging.Options{Format: "json", Console: &out, FlushEvery: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		for i := range 3 {
			logger.Info("request", "n", i)
		}
		if got, _ := out.read(); got != "" {
			t.Fatalf("info written before the interval: %q", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, writes := out.read()
			if strings.Count(got, `"msg":"request"`) == 3 {
				if writes != 1 {
					t.Errorf("%d writes for three held records, want 1", writes)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("held records not written within 5s: %q", got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("WarningsAtOnce", func(t *testing.T) {
		var out lockedBuffer
		logger, closer, err := logging.New(logging.Options{Format: "json", Console: &out, FlushEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		logger.Info("before")
		logger.With("component", "x").Warn("careful")
		got, _ := out.read()
		if !strings.Contains(got, `"msg":"before"`) || !strings.Contains(got, `"msg":"careful"`) {
			t.Errorf("a warning did not write what was held: %q", got)
		}
	})
	t.Run("CloseWritesWhatIsHeld", func(t *testing.T) {
		var out lockedBuffer
		dir := t.TempDir()
		logger, closer, err := logging.New(logging.Options{Format: "json", Console: &out, Dir: dir, FlushEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("last words")
		if err := closer.Close(); err != nil {
			t.Fatal(err)
		}
		if got, _ := out.read(); !strings.Contains(got, "last words") {
			t.Errorf("console after Close = %q", got)
		}
		file, err := os.ReadFile(filepath.Join(dir, logging.AllFile))
		if err != nil || !strings.Contains(string(file), "last words") {
			t.Errorf("%s after Close = %q, %v", logging.AllFile, file, err)
		}
	})
}
