// Similarity and isotropy measures evaluated from accumulated moments (exact, no n x n).
// Each returns one value per compared pair ([P]) or per layer ([L]).
#pragma once

#include <map>
#include <string>

#include "moments.h"

namespace ftlens {

// The closed sets the measures take (bound as the enums _C.Rdm, _C.Compare, _C.CcaMethod, _C.Stream).
enum class Rdm { Inner, Cosine, Correlation, SqEuclidean };
enum class Compare { Pearson, Cosine };
enum class CcaMethod { Mean, Svcca, Pwcca };
enum class Stream { X, Y };
const char* rdm_name(Rdm rdm);

// Every measure raises on a pair where it is undefined (a constant representation, too few
// rows for the unbiased HSIC) when `strict`; otherwise such pairs come back as NaN.

// Linear CKA; debiased: the unbiased HSIC estimator of Song et al. (2012).
at::Tensor cka(const MomentsCore& m, bool debiased, bool strict = true);

// Pearson or cosine comparison of the off-diagonal entries of two RDMs.
at::Tensor rsa(const MomentsCore& m, Rdm rdm, Compare compare, bool strict = true);

// Mean canonical correlation, SVCCA (the top `k` principal directions, or those holding
// `threshold` of the variance when k <= 0) or PWCCA.
at::Tensor cca(const MomentsCore& m, CcaMethod method, int64_t k, double threshold, bool strict = true);

// Orthogonal Procrustes distance between centered, unit-Frobenius-norm representations.
at::Tensor procrustes(const MomentsCore& m, bool strict = true);

// Isotropy diagnostics of one stream, one value per layer; a constant layer raises when
// `strict`, else its values are NaN (n_constant_dims aside).
std::map<std::string, at::Tensor> isotropy(const MomentsCore& m, Stream stream, int64_t top_k,
                                           bool strict = true);

}  // namespace ftlens
