// The production JournalSink: appends go to the store thread (store::JournalWriter), which
// group-commits them and runs each completion on its own thread.
#pragma once

#include "coordinator/coordinator.h"
#include "store/journal_writer.h"

namespace tierflow::coordinator {

class WriterSink final : public JournalSink {
 public:
  // `writer` must outlive the sink.
  explicit WriterSink(store::JournalWriter* writer) : writer_(writer) {}
  void Append(std::vector<store::JournalRecord> records, Done done) override {
    writer_->Append(std::move(records), std::move(done));
  }
  uint64_t committed_records() const override { return writer_->committed_records(); }

 private:
  store::JournalWriter* const writer_;
};

}  // namespace tierflow::coordinator
