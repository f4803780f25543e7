// Package defaults fills in the settings a caller left out of a
// configuration: the zero value of a duration, a size or a count means "the
// default".
package defaults

// Positive sets *v to def unless *v is above zero: a setting that only a
// positive value makes sense for takes its default when left out (or given
// a negative value).
func Positive[T ~int | ~int64 | ~float64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
