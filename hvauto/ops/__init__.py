"""Operations: one module per job, each inspect -> plan -> apply -> verify over a Session."""
