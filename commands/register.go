package commands

import (
	"context"
	"errors"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
)

// EmailClaimScope is the unique-claim scope of users' e-mail addresses.
const EmailClaimScope = "user.email"

// PasswordHasher hashes and verifies passwords.
type PasswordHasher interface {
	Hash(password string) (string, error)
	Verify(password, encodedHash string) (bool, error)
	// VerifyDummy does the work of Verify against no account, so that unknown
	// accounts cost the same time as known ones.
	VerifyDummy(password string)
}

// Register creates an account.
type Register struct {
	Email       string
	Password    string
	DisplayName string
}

// RegisterResult is the new account.
type RegisterResult struct {
	User UserState
	Written
}

// RegisterHandler handles Register.
type RegisterHandler struct {
	repos  *repositories
	hasher PasswordHasher
}

// Handle registers the user. An e-mail address already in use is a
// CodeConflict error.
func (h *RegisterHandler) Handle(ctx context.Context, cmd Register) (RegisterResult, error) {
	pwErr := user.ValidatePassword(cmd.Password)
	id := newID()
	// Validate the other fields before paying for the hash, and report every
	// problem at once.
	if _, err := user.Register(id, cmd.Email, cmd.DisplayName, "placeholder"); err != nil || pwErr != nil {
		return RegisterResult{}, mergeInvalid(err, pwErr)
	}
	hash, err := h.hasher.Hash(cmd.Password)
	if err != nil {
		return RegisterResult{}, err
	}
	u, err := user.Register(id, cmd.Email, cmd.DisplayName, hash)
	if err != nil {
		return RegisterResult{}, err
	}
	state := catalog.UserStateOf(u)
	w, err := h.repos.users.create(withActor(ctx, id), id, u,
		eventstore.WithClaims(eventstore.Claim{Scope: EmailClaimScope, Value: u.Email()}))
	if errors.Is(err, eventstore.ErrClaimed) {
		return RegisterResult{}, domain.Errorf(domain.CodeConflict, "an account with this e-mail address already exists")
	}
	if err != nil {
		return RegisterResult{}, err
	}
	return RegisterResult{User: state, Written: w}, nil
}

// mergeInvalid combines validation errors into one that lists every field.
func mergeInvalid(errs ...error) error {
	merged := &domain.Error{Code: domain.CodeInvalid, Message: "validation failed"}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
			return err
		}
		merged.Fields = append(merged.Fields, de.Fields...)
	}
	return merged
}
