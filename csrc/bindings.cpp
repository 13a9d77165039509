// Python bindings of the ftlens core (module ftlens._C).
#include <torch/extension.h>

#include <optional>

#include "measures.h"
#include "moments.h"
#include "rowops.h"

namespace py = pybind11;
using ftlens::MomentsCore;

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "ftlens C++ core: streaming moments and the measures computed from them";

  m.def("build_info", [] {
    py::dict info;
    info["compiler"] = FTLENS_CXX_COMPILER;
    info["torch"] = TORCH_VERSION;
    info["cuda"] = ftlens::built_with_cuda();
    return info;
  });
  m.def(
      "center_rows",
      [](const at::Tensor& x, const at::Tensor& shift, const std::optional<at::ScalarType>& dtype) {
        return ftlens::center_rows(x, shift, dtype.value_or(x.scalar_type()));
      },
      py::arg("x"), py::arg("shift"), py::arg("out_dtype") = py::none());
  m.def(
      "normalize_rows",
      [](const at::Tensor& x, bool center) { return ftlens::normalize_rows(x, center); },
      py::arg("x"), py::arg("center"));

  py::class_<MomentsCore>(m, "MomentsCore")
      .def(py::init<int64_t, int64_t, int64_t, const std::string&,
                    const std::vector<std::string>&>(),
           py::arg("n_layers"), py::arg("p"), py::arg("q"), py::arg("pairs"), py::arg("views"))
      .def(
          "update",
          [](MomentsCore& self, const at::Tensor& xs, const std::optional<at::Tensor>& ys) {
            self.update(xs, ys.has_value() ? *ys : at::Tensor());
          },
          py::arg("xs"), py::arg("ys") = py::none(), py::call_guard<py::gil_scoped_release>())
      .def("merge", &MomentsCore::merge, py::arg("other"),
           py::call_guard<py::gil_scoped_release>())
      .def("reset", &MomentsCore::reset)
      .def("state_dict", &MomentsCore::state_dict)
      .def("load_state_dict", &MomentsCore::load_state_dict, py::arg("state"))
      .def_property_readonly("n", &MomentsCore::n)
      .def_property_readonly("chunks", &MomentsCore::chunks)
      .def_property_readonly("n_layers", &MomentsCore::layers)
      .def_property_readonly("p", &MomentsCore::p)
      .def_property_readonly("q", &MomentsCore::q)
      .def_property_readonly("pairs", &MomentsCore::pairs)
      .def_property_readonly("views", &MomentsCore::view_names)
      .def("cka", &ftlens::cka, py::arg("debiased"), py::arg("strict") = true,
           py::call_guard<py::gil_scoped_release>())
      .def("rsa", &ftlens::rsa, py::arg("rdm"), py::arg("compare"), py::arg("strict") = true,
           py::call_guard<py::gil_scoped_release>())
      .def("cca", &ftlens::cca, py::arg("method"), py::arg("k"), py::arg("threshold"),
           py::call_guard<py::gil_scoped_release>())
      .def("procrustes", &ftlens::procrustes, py::arg("strict") = true,
           py::call_guard<py::gil_scoped_release>())
      .def("isotropy", &ftlens::isotropy, py::arg("stream"), py::arg("top_k"),
           py::call_guard<py::gil_scoped_release>());
}
