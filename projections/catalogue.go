package projections

// Kinds of read model.
const (
	// KindSQL is a set of SQL tables, rebuilt with a Rebuilder.
	KindSQL = "sql"
	// KindRedis is a Redis read model (package projections/redis), rebuilt
	// with its ReadModels.Rebuild.
	KindRedis = "redis"
	// KindCache is a cache that refills itself; it is not rebuilt.
	KindCache = "cache"
)

// Info describes a projector for operators (engram projections list).
type Info struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description"`
	Tables      []string `json:"tables,omitempty"`
	// Rebuildable reports whether engram projections rebuild can rebuild it.
	Rebuildable bool `json:"rebuildable"`
}

// Catalogue describes the SQL projectors and the cognition ones. The Redis
// read models describe theirs (package projections/redis).
func Catalogue() []Info {
	var out []Info
	for _, p := range append(SQL(), Cognition()...) {
		info := Info{Name: p.Name(), Kind: KindSQL}
		if d, ok := p.(Describer); ok {
			info.Description = d.Description()
		}
		if tp, ok := p.(TableProjector); ok {
			info.Tables, info.Rebuildable = tp.Tables(), true
		}
		out = append(out, info)
	}
	return out
}

// SQLProjector returns the SQL projector named name.
func SQLProjector(name string) (TableProjector, bool) {
	for _, p := range append(SQL(), Cognition()...) {
		if tp, ok := p.(TableProjector); ok && p.Name() == name {
			return tp, true
		}
	}
	return nil, false
}
