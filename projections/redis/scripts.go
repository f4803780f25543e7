package redis

import (
	"context"
	_ "embed"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The read models' Lua scripts, each documented in its file under lua/.
// The scripts that compare cursors start with lua/cursor.lua.
var (
	//go:embed lua/cursor.lua
	cursorLua string
	//go:embed lua/apply.lua
	applyLua string
	//go:embed lua/begin.lua
	beginLua string
	//go:embed lua/finish.lua
	finishLua string
	//go:embed lua/lock_refresh.lua
	lockRefreshLua string
	//go:embed lua/lock_release.lua
	lockReleaseLua string
	//go:embed lua/read_messages.lua
	readMessagesLua string
	//go:embed lua/read_workspaces.lua
	readWorkspacesLua string
)

var (
	// applyScript applies one event to a read model and moves its
	// checkpoint.
	applyScript = goredis.NewScript(cursorLua + applyLua)
	// beginScript starts a rebuild into a new generation of keys.
	beginScript = goredis.NewScript(beginLua)
	// finishScript makes a rebuilt generation live once it has caught up.
	finishScript = goredis.NewScript(cursorLua + finishLua)
	// refreshScript extends a lock its owner holds; releaseScript drops it.
	refreshScript = goredis.NewScript(lockRefreshLua)
	releaseScript = goredis.NewScript(lockReleaseLua)
	// readMessagesScript reads a page of a conversation's messages.
	readMessagesScript = goredis.NewScript(cursorLua + readMessagesLua)
	// readWorkspacesScript reads the first page of a user's workspaces.
	readWorkspacesScript = goredis.NewScript(cursorLua + readWorkspacesLua)
)

// apply runs the apply script once for each element of args, in one
// pipeline, and returns the scripts' answers. When Redis does not know the
// script (it restarted, or flushed its scripts) it is loaded and the
// pipeline sent again: the script skips what it has applied already.
func apply(ctx context.Context, c *goredis.Client, meta string, args [][]any) ([]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	keys := []string{meta}
	run := func() ([]*goredis.Cmd, error) {
		pipe := c.Pipeline()
		cmds := make([]*goredis.Cmd, len(args))
		for i, a := range args {
			cmds[i] = applyScript.EvalSha(ctx, pipe, keys, a...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if isNoScript(err) {
		if err = applyScript.Load(ctx, c).Err(); err == nil {
			cmds, err = run()
		}
	}
	if err != nil {
		return nil, err
	}
	results := make([]string, len(cmds))
	for i, cmd := range cmds {
		results[i], _ = cmd.Text()
	}
	return results, nil
}

// isNoScript reports whether err means that Redis does not know a script
// (it restarted, or its scripts were flushed).
func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }
