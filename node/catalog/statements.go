package catalog

import (
	"strings"

	"gantry/store"
)

// The statements of the service terms (../shared/seed/service-terms.zh.txt)
// that publishing and using community images involve, verbatim in Chinese
// (the original; the terms' bold markup removed) and in an English
// translation. What a user agreed to is recorded with its language and
// exact text.

// Statement is one statement of the terms in both languages.
type Statement struct {
	Clause string
	ZH, EN string
}

// Text is the statement in lang ("zh" or "en"; anything else: en).
func (s Statement) Text(lang string) string {
	if lang == "zh" {
		return s.ZH
	}
	return s.EN
}

var (
	// GrantToUsers is the licence a publisher grants other users
	// (service terms 2.1.2.1).
	GrantToUsers = Statement{Clause: "2.1.2.1",
		ZH: "如果您决定将您的数据集、镜像、模型、软件分享给他人，您授予每个用户永久的、不可撤销的、全球范围内的、免版税的、非独家的许可，通过本产品服务和功能使用、展示、发布、复制、分发和制作您的内容的衍生作品。",
		EN: "If you decide to share your datasets, images, models or software with others, you grant every user a perpetual, irrevocable, worldwide, royalty-free, non-exclusive licence to use, display, publish, copy, distribute and make derivative works of your content through the services and features of this product."}
	// Warranty is the publisher's warranty of rights (service terms
	// 2.1.4.1 (5), its first sentence).
	Warranty = Statement{Clause: "2.1.4.1 (5)",
		ZH: "您确保您使用本产品服务上传的信息内容是您所有或被相关权利人授权同意处理的信息, 我们根据您的指令分析、处理该等信息内容不会侵犯任何第三方的合法权益(包括但不限于著作权、名誉权、财产权)。",
		EN: "You warrant that the content you upload through this product's services is yours or that its rights holders have authorised you to have it processed, and that our analysing and processing it on your instructions will not infringe any third party's lawful rights (including but not limited to copyright, reputation and property rights)."}
	// NonCommercial is what a publisher of community images agrees to
	// (service terms 2.2.2.1 (1)).
	NonCommercial = Statement{Clause: "2.2.2.1 (1)",
		ZH: "您知悉并同意本产品是旨在为广大开发者和其他用户提供技术研究学习及交流的非商业化产品，您不得在未经我们许可的情况下擅自通过社区镜像面向其他用户提供任何商业化服务。",
		EN: "You understand and agree that this product is a non-commercial product meant to give developers and other users a place for technical research, learning and exchange; you may not offer any commercial service to other users through community images without our permission."}
	// ForLearning is what users of community images are told (service
	// terms 2.2.2.2 (1)).
	ForLearning = Statement{Clause: "2.2.2.2 (1)",
		ZH: "社区镜像为创建者为您提供的预置软件、模型、数据集等，您仅可出于个人学习、研究目的使用社区镜像，不得在未经创建者许可的情况下基于其面向任何第三方提供服务。",
		EN: "Community images are pre-built software, models, datasets and the like their creators provide; you may use them only for personal learning and research, and may not offer services to any third party based on them without the creator's permission."}
	// AIOutput is what users of generative-AI community images are told
	// (service terms 2.2.2.2 (2)).
	AIOutput = Statement{Clause: "2.2.2.2 (2)",
		ZH: "鉴于目前 AI 技术的局限性，社区镜像创建者不能保证前述模型或应用生成内容合法、真实、准确、完整，您应当自行加以判断并承担因使用内容引起的风险。",
		EN: "Given the limits of today's AI technology, the creators of community images cannot guarantee that what these models or applications generate is lawful, true, accurate or complete; judge it yourself and bear the risks of using it."}
)

// publisherStatements are what a publisher agrees to by publishing.
var publisherStatements = []Statement{GrantToUsers, Warranty, NonCommercial}

// grantStatement is the publisher's agreement as recorded: the statements
// in the language they were shown, with their clauses.
func grantStatement(lang string) (store.Statement, error) {
	if lang == "" {
		lang = "en"
	}
	if lang != "en" && lang != "zh" {
		return store.Statement{}, store.Errorf(store.EInvalid, "lang: en or zh")
	}
	return store.Statement{Lang: lang, Text: PublisherAgreement(lang)}, nil
}

// PublisherAgreement is the text a publisher agrees to, in lang.
func PublisherAgreement(lang string) string {
	var b strings.Builder
	for i, s := range publisherStatements {
		if i > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString("[" + s.Clause + "] " + s.Text(lang))
	}
	return b.String()
}
