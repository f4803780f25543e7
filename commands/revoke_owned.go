package commands

import (
	"context"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
)

// revokeOwned revokes a credential (a session, an API key) through repo on
// behalf of actor, then tells revoked, so that every instance refuses the
// credential at once. Only session credentials revoke
// (access.CheckCredentials); a credential of another user is not found
// (CodeNotFound), except for admins. field names the id in validation
// errors, what the credential in the not-found one.
func revokeOwned[T aggregate](ctx context.Context, repo *repository[T], actor access.Actor, field, id, what string,
	owner func(T) string, revoke func(T) error, revoked func(ctx context.Context, id string)) (Written, error) {
	if err := access.CheckCredentials(actor); err != nil {
		return Written{}, err
	}
	if err := validID(field, id); err != nil {
		return Written{}, err
	}
	w, err := repo.update(withActor(ctx, actor.UserID), id, func(c T) error {
		if owner(c) != actor.UserID && !actor.HasRole(access.RoleAdmin) {
			return domain.Errorf(domain.CodeNotFound, "%s not found", what)
		}
		return revoke(c)
	})
	if err != nil {
		return Written{}, err
	}
	revoked(ctx, id)
	return w, nil
}
