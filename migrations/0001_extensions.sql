-- Up Migration
-- pgvector is not a trusted extension: on a managed database an administrator creates it once
-- (`codex-k8s db up` does so for the local cluster); then this line is a no-op.
CREATE EXTENSION IF NOT EXISTS vector;
