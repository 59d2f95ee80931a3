"""Follow-up spells and survival (docs/spells.md): the spells from the register by stated rules
(`build`), Kaplan-Meier, Cox, Aalen-Johansen, Fine-Gray and life tables (`survival`), and the
NOE before/after cohorts (`cohorts`)."""
