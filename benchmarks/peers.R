# Runs an R peer over an iteration ladder and writes each fit's factors.
# Usage: Rscript peers.R METHOD DIR LADDER THREADS
#   METHOD  lee | brunet (R package NMF, from W0/H0) or rcppml (RcppML, its own init)
#   DIR     holds X.bin (float64, column-major, with dims.txt "m n sparse") or X.mtx,
#           W0.bin, H0.bin; results go to DIR/METHOD_N_{W,H}.bin and DIR/METHOD_times.csv
#   LADDER  comma-separated iteration counts
args <- commandArgs(trailingOnly = TRUE)
method <- args[1]; dir <- args[2]; ladder <- as.integer(strsplit(args[3], ",")[[1]]); threads <- as.integer(args[4])
dims <- scan(file.path(dir, "dims.txt"), quiet = TRUE); m <- dims[1]; n <- dims[2]; k <- dims[3]; sparse <- dims[4] == 1
rd <- function(name, nr, nc) matrix(readBin(file.path(dir, name), "double", nr * nc), nr, nc)
wr <- function(M, name) writeBin(as.vector(M), file.path(dir, name))
if (sparse) {
  suppressMessages(library(Matrix)); X <- as(readMM(file.path(dir, "X.mtx")), "CsparseMatrix")
} else X <- rd("X.bin", m, n)
W0 <- rd("W0.bin", m, k); H0 <- rd("H0.bin", k, n)
never <- function(strategy, i, y, x, ...) FALSE
times <- c()
for (N in ladder) {
  if (method %in% c("lee", "brunet")) {
    suppressMessages(library(NMF))
    t <- system.time(f <- nmf(as.matrix(X), k, method = method, seed = nmfModel(W = W0, H = H0),
                             .stop = never, maxIter = N, .options = "v0-p"))[["elapsed"]]
    W <- basis(f); H <- coef(f)
  } else if (method == "rcppml") {
    suppressMessages(library(RcppML)); setRcppMLthreads(threads)
    t <- system.time(f <- RcppML::nmf(X, k, tol = 1e-12, maxit = N, verbose = FALSE, seed = 1))[["elapsed"]]
    W <- f$w %*% diag(f$d); H <- f$h
  } else stop("unknown method ", method)
  wr(W, sprintf("%s_%d_W.bin", method, N)); wr(H, sprintf("%s_%d_H.bin", method, N))
  times <- c(times, t)
  cat(N, t, "\n")
}
write.csv(data.frame(n_iter = ladder, seconds = times), file.path(dir, paste0(method, "_times.csv")), row.names = FALSE)
