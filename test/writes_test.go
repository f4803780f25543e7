package test

import (
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/engramhq/engram/test/enginetest"
)

// twoInstances starts two instances on one database, and returns them with
// Ada and a conversation of hers.
func twoInstances(t *testing.T) (instances []*enginetest.Instance, ada *enginetest.Client, conv string) {
	t.Helper()
	first := enginetest.Start(t, enginetest.Options{})
	instances = []*enginetest.Instance{first, first.Second(t)}
	ada = first.Signup(t, "Ada")
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Two instances"}).Map(t)["id"].(string)
	conv = ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations",
		map[string]any{"title": "Everyone at once"}).Map(t)["id"].(string)
	return instances, ada, conv
}

// Many clients post to one conversation through two instances on one
// database, while the assistant answers in the same conversation: every
// post is 201, every message is stored once, the stream's versions are
// contiguous and its hash chain verifies. No writer trips over another.
func TestConcurrentPostsThroughTwoInstances(t *testing.T) {
	instances, ada, conv := twoInstances(t)
	first := instances[0]

	const goroutines, posts = 8, 10 // per instance
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = make(map[string]bool)
	)
	for i, inst := range instances {
		for g := range goroutines {
			wg.Go(func() {
				c := inst.Client(t)
				c.Token = ada.Token
				for p := range posts {
					r := c.Do("POST", "/v1/conversations/"+conv+"/messages",
						map[string]any{"content": fmt.Sprintf("instance %d, writer %d, post %d", i, g, p)})
					if r.Status != http.StatusCreated {
						t.Errorf("post: %d %s", r.Status, r.Body)
						return
					}
					id, _ := r.Map(t)["id"].(string)
					mu.Lock()
					ids[id] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if want := 2 * goroutines * posts; len(ids) != want {
		t.Fatalf("%d distinct message ids answered, want %d", len(ids), want)
	}

	db, err := sql.Open("postgres", first.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stream := "conversation-" + conv
	stored := make(map[string]int)
	for _, id := range queryStrings(t, db, `SELECT data->>'message_id' FROM events
		WHERE stream_id = $1 AND type = 'conversation.message_posted' AND data->>'role' = 'user'`, stream) {
		stored[id]++
	}
	for id := range ids {
		if stored[id] != 1 {
			t.Errorf("message %s stored %d times, want once", id, stored[id])
		}
	}
	if len(stored) != len(ids) {
		t.Errorf("%d user messages stored, %d answered", len(stored), len(ids))
	}

	var count, maxVersion int
	if err := db.QueryRow(`SELECT count(*), max(stream_version) FROM events WHERE stream_id = $1`, stream).
		Scan(&count, &maxVersion); err != nil {
		t.Fatal(err)
	}
	if count != maxVersion {
		t.Errorf("%d events up to version %d: versions are not contiguous", count, maxVersion)
	}

	out, errOut, code := engramCLI(t, first, "", "audit", "verify", "--stream", stream)
	if code != 0 || !strings.Contains(out, "no breaks") {
		t.Fatalf("engram audit verify: exit %d\n%s%s", code, out, errOut)
	}
}

// A read with Engram-Min-Position shows the write whichever instance took
// it and whichever serves the read: the instance whose batches project the
// write hears of it from them, the other asks the database.
func TestReadYourWritesThroughEitherInstance(t *testing.T) {
	instances, ada, conv := twoInstances(t)
	clients := make([]*enginetest.Client, 2)
	for i, inst := range instances {
		clients[i] = inst.Client(t)
		clients[i].Token = ada.Token
	}
	for round := range 5 {
		for i, writer := range clients {
			content := fmt.Sprintf("round %d, written through instance %d", round, i)
			posted := writer.Must(http.StatusCreated, "POST", "/v1/conversations/"+conv+"/messages",
				map[string]any{"content": content})
			position := int(posted.Map(t)["position"].(float64))
			for _, r := range []int{1 - i, i} {
				var page struct {
					Items []struct {
						Content string `json:"content"`
					} `json:"items"`
				}
				clients[r].Must(http.StatusOK, "GET", fmt.Sprintf("/v1/conversations/%s/messages?after=%d&limit=1", conv, position-1), nil,
					"Engram-Min-Position: "+posted.Position()).JSON(t, &page)
				if len(page.Items) != 1 || page.Items[0].Content != content {
					t.Fatalf("%s, read through instance %d: %+v, want %q", content, r, page.Items, content)
				}
			}
		}
	}
}
