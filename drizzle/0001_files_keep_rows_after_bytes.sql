ALTER TABLE "files" DROP CONSTRAINT "files_sha256_blobs_sha256_fk";
