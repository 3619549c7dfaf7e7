import AWSCore
import Testing

@Suite("Option names in library messages")
struct OptionTextTests {
    @Test("a message renders each option where it was written")
    func rendering() {
        let t: OptionText = "\(option: .volumeSize) \(3) GiB is smaller than \(option: .parentSnapshot)'s"
        #expect(t.description == "volume size 3 GiB is smaller than parent snapshot's")
        #expect(t.rendered { "--" + $0.rawValue } == "--volumeSize 3 GiB is smaller than --parentSnapshot's")
        #expect(t.options == [.volumeSize, .parentSnapshot])
        let plain = AWSConfigurationError("no credentials")
        #expect(plain.message == "no credentials" && plain.message(spelling: { _ in "X" }) == "no credentials")
    }
}
