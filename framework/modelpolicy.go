package framework

// Policy returns the conflict policy that decides model's conflicts: the
// one registered with it ([ModelOptions].Policy), else Config.DefaultPolicy,
// else [LastWriterWins]. Protocol adapters ask it to learn whether a
// model merges field by field ([UsesFieldTimes]) and to say what they do
// with each policy. It fails with unknown_model for a model the App does
// not have.
func (a *App) Policy(model string) (ConflictPolicy, error) {
	m, ok := a.model(model)
	if !ok {
		return nil, NewError(CodeUnknownModel, "unknown model %q", model)
	}
	return m.policy, nil
}
