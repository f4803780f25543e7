package eventstore

// LegacyChainHash computes an event's hash with the legacy scheme (numbers
// rounded to doubles), so that tests can store events as releases before the
// exact scheme wrote them.
func LegacyChainHash(prev []byte, e *Event, data, metadata []byte) ([]byte, error) {
	doc, err := legacyDocument(e, data, metadata)
	if err != nil {
		return nil, err
	}
	return digest(prev, doc), nil
}
