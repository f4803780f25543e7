package test

import (
	"database/sql"
	"net/http"
	"testing"

	"github.com/engramhq/engram/test/enginetest"
)

// An archived workspace accepts no command: every one of them, by its owner
// and by an editor, is refused with 409 problem JSON, and none of them
// writes anything.
func TestArchivedWorkspaceRefusesEveryCommand(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	bob := inst.Signup(t, "Bob")
	carol := inst.Signup(t, "Carol")

	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab"}).Map(t)["id"].(string)
	ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/members", map[string]any{"user_id": bob.UserID, "role": "editor"})
	conv := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations", map[string]any{"title": "Plans"}).Map(t)["id"].(string)
	item := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/memory",
		map[string]any{"type": "event", "content": "kept"}).Map(t)["id"].(string)

	archived := ada.Do("DELETE", "/v1/workspaces/"+ws, nil)
	if archived.Status/100 != 2 {
		t.Fatalf("archive: %d %s", archived.Status, archived.Body)
	}

	commands := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/conversations/" + conv + "/messages", map[string]any{"content": "still there?"}},
		{"PATCH", "/v1/conversations/" + conv, map[string]any{"title": "Renamed"}},
		{"DELETE", "/v1/conversations/" + conv, nil},
		{"POST", "/v1/conversations/" + conv + "/typing", map[string]any{"state": "start"}},
		{"POST", "/v1/workspaces/" + ws + "/conversations", map[string]any{"title": "Another"}},
		{"PATCH", "/v1/workspaces/" + ws, map[string]any{"name": "Renamed"}},
		{"DELETE", "/v1/workspaces/" + ws, nil},
		{"POST", "/v1/workspaces/" + ws + "/members", map[string]any{"user_id": carol.UserID, "role": "viewer"}},
		{"DELETE", "/v1/workspaces/" + ws + "/members/" + bob.UserID, nil},
		{"POST", "/v1/workspaces/" + ws + "/memory", map[string]any{"type": "event", "content": "more"}},
		{"DELETE", "/v1/workspaces/" + ws + "/memory/" + item, nil},
	}
	for _, who := range []struct {
		name   string
		client *enginetest.Client
	}{{"owner", ada}, {"editor", bob}} {
		for _, c := range commands {
			if who.name == "editor" && (c.method == "PATCH" || c.method == "DELETE") && c.path == "/v1/workspaces/"+ws {
				continue // owners only: 403 before the workspace's state matters
			}
			if who.name == "editor" && c.path == "/v1/workspaces/"+ws+"/members" {
				continue
			}
			r := who.client.Do(c.method, c.path, c.body)
			if r.Status != http.StatusConflict || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %s %s in an archived workspace: %d %s, want 409 problem JSON", who.name, c.method, c.path, r.Status, r.Body)
			}
		}
	}

	// Nothing was written after the archive.
	db, err := sql.Open("postgres", inst.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE global_position > $1
		AND stream_type IN ('workspace', 'conversation', 'memory', 'task')`, archived.Position()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d events recorded in the workspace after its archive", n)
	}
}
