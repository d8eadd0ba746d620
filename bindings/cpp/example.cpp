// Predict a feature table with an exported aam model from C++, then show that errors are
// exceptions.
//   c++ -std=c++17 -Wall -Werror -I include -I bindings/cpp bindings/cpp/example.cpp -L target/debug -laam
#include <iostream>

#include "aam.hpp"

int main(int argc, char **argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " MODEL TABLE.biom\n";
        return 2;
    }
    aam::Model model(argv[1]);
    aam::Predictions p = model.predict_biom(argv[2]);
    std::cout << "sample_id\tprediction";
    for (const auto &label : model.class_labels()) std::cout << "\tprobability_" << label;
    std::cout << '\n';
    for (size_t i = 0; i < p.size(); ++i) {
        std::cout << p.sample_id(i) << '\t' << p.label(i);
        for (float v : p.probabilities(i)) std::cout << '\t' << v;
        std::cout << '\n';
    }
    try {
        model.predict_tokens(std::vector<int64_t>(3, 0), 1, 1);
    } catch (const std::invalid_argument &) {
        std::cerr << "wrong token buffer size rejected\n";
    }
    try {
        aam::Model missing("/nonexistent/model.onnx");
        return 1;
    } catch (const aam::Error &e) {
        std::cerr << "missing model: " << e.what() << '\n';
        return e.status() == AAM_STATUS_MODEL ? 0 : 1;
    }
}
