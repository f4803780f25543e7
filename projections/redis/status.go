package redis

import (
	"context"
	"strconv"
)

// States of a Redis read model.
const (
	// Live: queries may read it.
	Live = "live"
	// Stale: it missed events; it is rebuilt before it is read again.
	Stale = "stale"
	// None: nothing is built yet (or Redis was emptied).
	None = "none"
	// Unavailable: Redis cannot be reached (the cache is on memory).
	Unavailable = "unavailable"
)

// Status is the state of one Redis read model.
type Status struct {
	// Name is the consumer group feeding the model.
	Name string `json:"name"`
	// State is Live, Stale, None or Unavailable.
	State string `json:"state"`
	// Position is the position of the last event that changed the live
	// model.
	Position int64 `json:"position"`
	// Building reports a rebuild in progress, at BuildPosition.
	Building      bool  `json:"building"`
	BuildPosition int64 `json:"build_position,omitempty"`
}

// Status reports the state of every Redis read model.
func (rm *ReadModels) Status(ctx context.Context) []Status {
	out := make([]Status, 0, 2)
	for _, m := range rm.models() {
		st, err := rm.status(ctx, m)
		if err != nil {
			st = Status{Name: m.group, State: Unavailable}
		}
		out = append(out, st)
	}
	return out
}

func (rm *ReadModels) status(ctx context.Context, m *model) (Status, error) {
	st := Status{Name: m.group, State: Unavailable}
	if !rm.up() {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	v, err := rm.client().HMGet(ctx, m.meta(), "state", "pos", "btoken", "bpos", "log").Result()
	if err != nil {
		rm.failed(ctx, "status "+m.name, err)
		return st, err
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	st.State = str(0)
	if st.State == "" {
		st.State = None
	}
	if log, _ := rm.log(ctx); st.State == Live && str(4) != log {
		st.State = Stale // another log's
	}
	st.Position, _ = strconv.ParseInt(str(1), 10, 64)
	if str(2) != "" {
		if held, err := rm.client().Exists(ctx, m.lock()).Result(); err == nil && held == 1 {
			st.Building = true
			st.BuildPosition, _ = strconv.ParseInt(str(3), 10, 64)
		}
	}
	return st, nil
}
