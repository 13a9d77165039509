// Python bindings of the ftlens core (module ftlens._C): glue only.
#include <torch/extension.h>

#include <mutex>
#include <optional>

#include "measures.h"
#include "moments.h"
#include "ops/dispatch.h"
#include "ops/cpu/simd.h"
#include "ops/scale_rows.h"
#include "ops/softmax_xent.h"
#include "probes/logistic.h"
#include "probes/ridge.h"
#include "tiles/engine.h"
#include "tiles/permute_pairs.h"

namespace py = pybind11;
using ftlens::MomentsCore;
using ftlens::PairEngine;
using ftlens::PairSide;
using ftlens::RidgeCore;

namespace {

// Runs f(self, args...) with the GIL released and the accumulator's mutex held, so that
// concurrent calls on one accumulator serialize while other Python threads run.
template <typename Core, typename R, typename... Args>
auto locked(R (*f)(Core&, Args...)) {
  return [f](Core& self, Args... args) -> R {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> guard(self.mutex());
    return f(self, std::forward<Args>(args)...);
  };
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "ftlens C++ core: streaming moments and the measures computed from them";

  m.def("build_info", [] {
    py::dict info;
    info["compiler"] = FTLENS_CXX_COMPILER;
    info["torch"] = TORCH_VERSION;
    info["cuda"] = ftlens::built_with_cuda();
    info["cpu_avx2"] = ftlens::cpu::has_avx2();  // the AVX2 twins of the row kernels are in use
    return info;
  });
  // The closed sets of names cross as enums; Python passes e.g. _C.Pairs.diagonal.
  py::enum_<ftlens::Pairs>(m, "Pairs").value("diagonal", ftlens::Pairs::Diagonal).value("all", ftlens::Pairs::All);
  py::enum_<ftlens::View>(m, "View")
      .value("raw", ftlens::View::Raw)
      .value("cosine", ftlens::View::Cosine)
      .value("correlation", ftlens::View::Correlation);
  py::enum_<ftlens::Rdm>(m, "Rdm")
      .value("inner", ftlens::Rdm::Inner)
      .value("cosine", ftlens::Rdm::Cosine)
      .value("correlation", ftlens::Rdm::Correlation)
      .value("sqeuclidean", ftlens::Rdm::SqEuclidean);
  py::enum_<ftlens::Compare>(m, "Compare").value("pearson", ftlens::Compare::Pearson).value("cosine", ftlens::Compare::Cosine);
  py::enum_<ftlens::CcaMethod>(m, "CcaMethod")
      .value("mean", ftlens::CcaMethod::Mean)
      .value("svcca", ftlens::CcaMethod::Svcca)
      .value("pwcca", ftlens::CcaMethod::Pwcca);
  py::enum_<ftlens::Stream>(m, "Stream").value("x", ftlens::Stream::X).value("y", ftlens::Stream::Y);
  py::class_<MomentsCore>(m, "MomentsCore")
      .def(py::init<int64_t, int64_t, int64_t, ftlens::Pairs, const std::vector<ftlens::View>&>(),
           py::arg("n_layers"), py::arg("p"), py::arg("q"), py::arg("pairs"), py::arg("views"))
      .def("update",
           locked(+[](MomentsCore& self, const at::Tensor& xs, const std::optional<at::Tensor>& ys) {
             self.update(xs, ys.has_value() ? *ys : at::Tensor());
           }),
           py::arg("xs"), py::arg("ys") = py::none())
      .def("check",
           locked(+[](MomentsCore& self, const at::Tensor& xs, const std::optional<at::Tensor>& ys,
                      int64_t rows_before) { self.check(xs, ys.has_value() ? *ys : at::Tensor(), rows_before); }),
           py::arg("xs"), py::arg("ys") = py::none(), py::arg("rows_before") = 0)
      .def(
          "merge",
          [](MomentsCore& self, const MomentsCore& other) {
            py::gil_scoped_release release;
            if (&self == &other) return self.merge(other);  // refused with a clear message
            std::scoped_lock guard(self.mutex(), other.mutex());
            self.merge(other);
          },
          py::arg("other"))
      .def("reset", locked(+[](MomentsCore& self) { self.reset(); }))
      .def(
          "rebase_to",
          [](MomentsCore& self, const MomentsCore& reference) {
            py::gil_scoped_release release;
            if (&self == &reference) return;
            std::scoped_lock guard(self.mutex(), reference.mutex());
            self.rebase_to(reference);
          },
          py::arg("reference"))
      .def("state_dict", locked(+[](MomentsCore& self) { return self.state_dict(); }))
      .def("load_state_dict",
           locked(+[](MomentsCore& self, const std::map<std::string, at::Tensor>& state) {
             self.load_state_dict(state);
           }),
           py::arg("state"))
      .def_property_readonly("n", locked(+[](MomentsCore& self) { return self.n(); }))
      .def_property_readonly("n_layers", &MomentsCore::layers)
      .def_property_readonly("p", &MomentsCore::p)
      .def_property_readonly("q", &MomentsCore::q)
      .def_property_readonly("pairs", &MomentsCore::pairs)
      .def_property_readonly("views", &MomentsCore::views)
      .def("cka", locked(+[](MomentsCore& self, bool debiased, bool strict) { return ftlens::cka(self, debiased, strict); }),
           py::arg("debiased"), py::arg("strict") = true)
      .def("rsa",
           locked(+[](MomentsCore& self, ftlens::Rdm rdm, ftlens::Compare compare, bool strict) {
             return ftlens::rsa(self, rdm, compare, strict);
           }),
           py::arg("rdm"), py::arg("compare"), py::arg("strict") = true)
      .def("cca",
           locked(+[](MomentsCore& self, ftlens::CcaMethod method, int64_t k, double threshold, bool strict) {
             return ftlens::cca(self, method, k, threshold, strict);
           }),
           py::arg("method"), py::arg("k"), py::arg("threshold"), py::arg("strict") = true)
      .def("procrustes", locked(+[](MomentsCore& self, bool strict) { return ftlens::procrustes(self, strict); }),
           py::arg("strict") = true)
      .def("isotropy",
           locked(+[](MomentsCore& self, ftlens::Stream stream, int64_t top_k, bool strict) {
             return ftlens::isotropy(self, stream, top_k, strict);
           }),
           py::arg("stream"), py::arg("top_k"), py::arg("strict") = true);

  py::class_<RidgeCore>(m, "RidgeCore")
      .def(py::init<int64_t, int64_t, int64_t, int64_t>(), py::arg("n_layers"), py::arg("p"), py::arg("q"),
           py::arg("folds"))
      .def("update",
           locked(+[](RidgeCore& self, const at::Tensor& xs, const at::Tensor& labels, const at::Tensor& offsets,
                      const at::Tensor& fold) { self.update(xs, labels, offsets, fold); }),
           py::arg("xs"), py::arg("labels"), py::arg("offsets"), py::arg("fold"))
      .def("cv_errors",
           locked(+[](RidgeCore& self, const at::Tensor& alphas, const at::Tensor& offsets) {
             return self.cv_errors(alphas, offsets);
           }),
           py::arg("alphas"), py::arg("offsets"))
      .def("solve",
           locked(+[](RidgeCore& self, const at::Tensor& alphas, const at::Tensor& offsets) {
             return self.solve(alphas, offsets);
           }),
           py::arg("alphas"), py::arg("offsets"))
      .def("fold_rows", locked(+[](RidgeCore& self) { return self.fold_rows(); }))
      .def("feature_moments", locked(+[](RidgeCore& self) { return self.feature_moments(); }))
      .def_property_readonly("n_layers", &RidgeCore::layers)
      .def_property_readonly("p", &RidgeCore::p)
      .def_property_readonly("q", &RidgeCore::q)
      .def_property_readonly("folds", &RidgeCore::folds);
  py::enum_<ftlens::tiles::Map>(m, "PairMap", "How a pair's inner product becomes its value (tiles/maps.h).")
      .value("linear", ftlens::tiles::kLinear)
      .value("one_minus", ftlens::tiles::kOneMinus)
      .value("sqeuclidean", ftlens::tiles::kSqEuclidean)
      .value("euclidean", ftlens::tiles::kEuclidean)
      .value("rbf", ftlens::tiles::kRbf);
  py::enum_<ftlens::tiles::Reducer>(m, "Reducer", "What a tile pass sums (tiles/engine.h).")
      .value("hsic", ftlens::tiles::kHsic)
      .value("pearson", ftlens::tiles::kPearson)
      .value("histogram", ftlens::tiles::kHistogram)
      .value("ranks", ftlens::tiles::kRanks)
      .value("collect", ftlens::tiles::kCollect)
      .value("select", ftlens::tiles::kSelect);
  py::class_<PairSide>(m, "PairSide", "How one side's rows become pair values (see csrc/tiles/engine.h).")
      .def(py::init<>())
      .def_readwrite("name", &PairSide::name)
      .def_readwrite("map", &PairSide::map)
      .def_readwrite("gamma", &PairSide::gamma)
      .def_readwrite("column_mean", &PairSide::column_mean)
      .def_readwrite("center_rows", &PairSide::center_rows)
      .def_readwrite("normalize_rows", &PairSide::normalize_rows)
      .def_readwrite("shift", &PairSide::shift)
      .def_readwrite("lo", &PairSide::lo)
      .def_readwrite("hi", &PairSide::hi)
      .def_readwrite("bins", &PairSide::bins)
      .def_readwrite("counts", &PairSide::counts)
      .def_readwrite("min", &PairSide::min)
      .def_readwrite("max", &PairSide::max)
      .def_readwrite("select_lo", &PairSide::select_lo)
      .def_readwrite("select_hi", &PairSide::select_hi)
      .def_readwrite("capacity", &PairSide::capacity);
  py::class_<PairEngine>(m, "PairEngine")
      .def(py::init([](const at::Tensor& x, const std::optional<at::Tensor>& y, const PairSide& sx,
                       const PairSide& sy, ftlens::tiles::Reducer reducer, int64_t tile, bool double_precision) {
             return std::make_unique<PairEngine>(x, y.has_value() ? *y : at::Tensor(), sx, sy, reducer, tile,
                                                 double_precision);
           }),
           py::arg("x"), py::arg("y"), py::arg("side_x"), py::arg("side_y"), py::arg("reducer"), py::arg("tile"),
           py::arg("double_precision"))
      .def("run_stripe", locked(+[](PairEngine& self, int64_t stripe) { self.run_stripe(stripe); }),
           py::arg("stripe"))
      .def("result", locked(+[](PairEngine& self) { return self.result(); }))
      .def_property_readonly("n", &PairEngine::n)
      .def_property_readonly("tile", &PairEngine::tile)
      .def_property_readonly("blocks", &PairEngine::blocks);
  m.def("permute_pairs", &ftlens::permute_pairs, py::arg("values"), py::arg("order"),
        py::call_guard<py::gil_scoped_release>(),
        "The pairs i < j (row-major) of a symmetric matrix with rows and columns taken in `order`.");
  m.def(
      "scale_rows",
      [](const at::Tensor& x, const at::Tensor& shift, const at::Tensor& scale) {
        return ftlens::scale_rows(x, shift, scale);
      },
      py::arg("x"), py::arg("shift"), py::arg("scale"), py::call_guard<py::gil_scoped_release>());
  m.def("softmax_xent", &ftlens::softmax_xent, py::arg("logits"), py::arg("labels"), py::arg("offsets"),
        py::call_guard<py::gil_scoped_release>());
  m.def("scratch_pool_bytes", [] { return ftlens::ScratchPool::instance().bytes(); },
        "Bytes of released CPU working buffers held for reuse (at most 256 MiB).");
  py::class_<ftlens::Scratch>(m, "Scratch",
                              "Working buffers reused by the probe ops from call to call (one per thread).")
      .def(py::init<>())
      .def("clear", &ftlens::Scratch::clear, "Releases the buffers (CPU ones to the shared pool of working buffers).");
  m.def("logistic_loss_grad", &ftlens::logistic_loss_grad, py::arg("xs"), py::arg("shift"), py::arg("scale"),
        py::arg("w"), py::arg("b"), py::arg("labels"), py::arg("offsets"), py::arg("scratch") = nullptr,
        py::call_guard<py::gil_scoped_release>());
  m.def("linear_predict", &ftlens::linear_predict, py::arg("xs"), py::arg("shift"), py::arg("scale"), py::arg("w"),
        py::arg("b"), py::arg("offsets"), py::arg("scratch") = nullptr, py::call_guard<py::gil_scoped_release>());
}
